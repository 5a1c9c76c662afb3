from django.contrib import admin

from profiles.models import CrmUserProfile


@admin.register(CrmUserProfile)
class CrmUserProfileAdmin(admin.ModelAdmin):
    list_display = (
        "user_id",
        "engagement_tier",
        "churn_risk",
        "primary_goal",
        "activity_level",
        "last_active_at",
        "consent_ai_processing",
        "created_at",
    )
    list_filter = (
        "engagement_tier",
        "primary_goal",
        "activity_level",
        "consent_ai_processing",
        "consent_marketing",
    )
    search_fields = ("user_id",)
    ordering = ("-churn_risk",)
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "updated_at", "churn_assessed_at", "email_hash", "phone_hash")
    list_per_page = 50
    show_full_result_count = False
