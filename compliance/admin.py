from django.contrib import admin

from compliance.models import AuditLog, ErasureTombstone
from yahealthy_crm.admin_base import ReadOnlyAdmin


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only: the audit trail can be searched and read, never changed or deleted."""

    list_display = ("created_at", "actor_type", "actor_id", "action", "entity_type", "entity_id", "user_id")
    list_filter = ("actor_type", "entity_type", "action")
    search_fields = ("=user_id", "=actor_id", "=entity_id", "=request_id")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False


@admin.register(ErasureTombstone)
class ErasureTombstoneAdmin(ReadOnlyAdmin):
    """Read-only record of GDPR erasures (pseudonymous: hashed user id)."""

    list_display = ("erased_at", "user_id_hash", "actor_type", "actor_id", "request_id")
    list_filter = ("actor_type",)
    search_fields = ("=user_id_hash", "=request_id")
    date_hierarchy = "erased_at"
