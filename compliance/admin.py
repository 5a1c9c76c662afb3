from django.contrib import admin

from compliance.models import AuditLog, ErasureTombstone


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the audit trail can be searched and read, never changed or deleted."""

    list_display = ("created_at", "actor_type", "actor_id", "action", "entity_type", "entity_id", "user_id")
    list_filter = ("actor_type", "entity_type", "action")
    search_fields = ("=user_id", "=actor_id", "=entity_id", "=request_id")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ErasureTombstone)
class ErasureTombstoneAdmin(admin.ModelAdmin):
    """Read-only record of GDPR erasures (pseudonymous: hashed user id)."""

    list_display = ("erased_at", "user_id_hash", "actor_type", "actor_id", "request_id")
    list_filter = ("actor_type",)
    search_fields = ("=user_id_hash", "=request_id")
    date_hierarchy = "erased_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
