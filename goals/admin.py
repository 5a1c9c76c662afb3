from django.contrib import admin

from goals.models import HealthGoal


@admin.register(HealthGoal)
class HealthGoalAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user_id",
        "goal_type",
        "metric",
        "goal_value",
        "goal_unit",
        "status",
        "progress_pct",
        "streak_days",
        "priority",
        "source",
        "target_date",
    )
    list_filter = ("status", "goal_type", "priority", "source")
    search_fields = ("=user__user_id", "external_id")
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "updated_at", "accepted_at", "completed_at", "source_updated_at")
    list_per_page = 50
    show_full_result_count = False
