from django.contrib import admin

from coaching.models import AiInsight, CoachingSession
from yahealthy_crm.admin_base import ReadOnlyAdmin


@admin.register(AiInsight)
class AiInsightAdmin(ReadOnlyAdmin):
    list_display = ("id", "user_id", "insight_type", "title", "source", "created_at", "dismissed_at")
    list_filter = ("insight_type", "source", ("dismissed_at", admin.EmptyFieldListFilter))
    search_fields = ("=user__user_id", "title")
    raw_id_fields = ("user", "coaching_session")
    readonly_fields = ("created_at",)
    list_per_page = 50
    show_full_result_count = False


@admin.register(CoachingSession)
class CoachingSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "user_id", "provider", "model", "status", "tools_used", "latency_ms", "created_at")
    list_filter = ("provider", "status")
    search_fields = ("=user__user_id", "message")
    raw_id_fields = ("user",)
    exclude = ("embedding",)
    readonly_fields = ("created_at",)
    list_per_page = 50
    show_full_result_count = False
