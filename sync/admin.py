from django.contrib import admin, messages

from sync.delivery import outbound_events_retry
from sync.models import SyncDirection, SyncEvent, SyncStatus


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
    actions = ["retry_deliveries"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry delivery (dead letters and skipped outbound events)", permissions=["change"])
    def retry_deliveries(self, request, queryset):
        ids = list(
            queryset.filter(
                direction=SyncDirection.OUTBOUND, status__in=[SyncStatus.DEAD_LETTER, SyncStatus.SKIPPED]
            ).values_list("pk", flat=True)
        )
        retried = outbound_events_retry(
            event_ids=ids,
            statuses=(SyncStatus.DEAD_LETTER, SyncStatus.SKIPPED),
            actor_id=request.user.get_username(),
        )
        ignored = queryset.count() - retried
        self.message_user(request, f"Queued {retried} event(s) for delivery.", messages.SUCCESS)
        if ignored:
            self.message_user(
                request,
                f"{ignored} selected event(s) are not dead letters or skipped; left alone.",
                messages.WARNING,
            )
