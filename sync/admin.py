from django.contrib import admin

from sync.models import SyncEvent


@admin.register(SyncEvent)
class SyncEventAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "direction",
        "user_id",
        "entity_type",
        "operation",
        "status",
        "attempts",
        "occurred_at",
        "created_at",
    )
    list_filter = ("direction", "status", "entity_type")
    search_fields = ("=user_id", "=idempotency_key", "=external_id")
    readonly_fields = [f.name for f in SyncEvent._meta.fields]
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request):
        return False
