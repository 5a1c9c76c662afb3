from django.contrib import admin

from goals.models import HealthGoal
from goals.services import goal_create, goal_update
from yahealthy_crm.actors import ActorType

# Fields staff may change on an existing goal (the same set the API accepts).
GOAL_UPDATABLE_FIELDS = ("progress_pct", "status", "goal_value", "target_date", "priority")


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

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return [f.name for f in HealthGoal._meta.fields if f.name not in GOAL_UPDATABLE_FIELDS]

    def save_model(self, request, obj, form, change):
        # Through the goal services: status rules, audit trail and outbound sync like the API.
        actor_id = request.user.get_username()
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data if name in GOAL_UPDATABLE_FIELDS}
            if fields:
                goal_update(goal_id=obj.pk, actor_type=ActorType.STAFF, actor_id=actor_id, fields=fields)
        else:
            obj.pk = goal_create(
                user_id=obj.user_id,
                goal_type=obj.goal_type,
                goal_value=obj.goal_value,
                goal_unit=obj.goal_unit,
                metric=obj.metric,
                target_date=obj.target_date,
                priority=obj.priority,
                status=obj.status,
                start_value=obj.start_value,
                rationale=obj.rationale,
                actor_type=ActorType.STAFF,
                actor_id=actor_id,
            ).pk
        obj.refresh_from_db()
