from django.contrib import admin

from activities.models import UserActivity
from yahealthy_crm.admin_base import ReadOnlyAdmin


@admin.register(UserActivity)
class UserActivityAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user_id",
        "activity_type",
        "occurred_at",
        "calories_kcal",
        "protein_g",
        "source",
        "external_id",
        "has_embedding",
    )
    list_filter = ("activity_type", "source")
    search_fields = ("=user__user_id", "=external_id")
    raw_id_fields = ("user",)
    exclude = ("embedding",)
    readonly_fields = ("created_at", "updated_at", "source_updated_at")
    date_hierarchy = "occurred_at"
    list_per_page = 50
    show_full_result_count = False

    @admin.display(boolean=True, description="embedded")
    def has_embedding(self, obj: UserActivity) -> bool:
        return obj.embedding is not None
