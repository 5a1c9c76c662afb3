import operator
from functools import reduce

from django.db import models
from django.db.models import Q


class GoalType(models.TextChoices):
    WEIGHT = "weight"
    NUTRITION = "nutrition"
    ACTIVITY = "activity"
    WATER = "water"
    SLEEP = "sleep"


class GoalMetric(models.TextChoices):
    """What a goal measures, so progress can be computed from activity data."""

    WEIGHT_KG = "weight_kg"
    CALORIES_KCAL = "calories_kcal"
    PROTEIN_G = "protein_g"
    CARBS_G = "carbs_g"
    FAT_G = "fat_g"
    WATER_ML = "water_ml"
    SLEEP_HOURS = "sleep_hours"
    EXERCISE_MINUTES = "exercise_minutes"
    STEPS = "steps"


# What each goal type can measure, with the unit the CRM expects for it. The one home of this rule:
# goals.rules reads it for REST, the webhook and the coach, the CHECK constraint below for the table.
GOAL_TYPE_METRICS: dict[str, dict[str, str]] = {
    GoalType.WEIGHT: {GoalMetric.WEIGHT_KG: "kg"},
    GoalType.NUTRITION: {
        GoalMetric.CALORIES_KCAL: "kcal",
        GoalMetric.PROTEIN_G: "g",
        GoalMetric.CARBS_G: "g",
        GoalMetric.FAT_G: "g",
    },
    GoalType.ACTIVITY: {GoalMetric.EXERCISE_MINUTES: "min", GoalMetric.STEPS: "steps"},
    GoalType.WATER: {GoalMetric.WATER_ML: "ml"},
    GoalType.SLEEP: {GoalMetric.SLEEP_HOURS: "h"},
}


class GoalStatus(models.TextChoices):
    SUGGESTED = "suggested"
    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class GoalPriority(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class GoalSource(models.TextChoices):
    APP = "app"
    USER = "user"
    STAFF = "staff"
    AI_ASSISTANT = "ai_assistant"
    SYSTEM = "system"


class HealthGoal(models.Model):
    """A user's health or nutrition target (crm_health_goals)."""

    user = models.ForeignKey(
        "profiles.CrmUserProfile",
        to_field="user_id",
        db_column="user_id",
        db_index=False,  # the composite (user_id, ...) indexes below serve every lookup by user
        on_delete=models.CASCADE,
        related_name="goals",
    )
    goal_type = models.CharField(max_length=16, choices=GoalType.choices)
    metric = models.CharField(max_length=24, choices=GoalMetric.choices)
    goal_value = models.DecimalField(max_digits=10, decimal_places=2)
    goal_unit = models.CharField(max_length=16)
    start_value = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    target_date = models.DateField(null=True, blank=True)
    priority = models.CharField(max_length=8, choices=GoalPriority.choices, default=GoalPriority.MEDIUM)
    status = models.CharField(max_length=16, choices=GoalStatus.choices, default=GoalStatus.ACTIVE)
    progress_pct = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    streak_days = models.PositiveIntegerField(default=0)
    streak_last_date = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=GoalSource.choices, default=GoalSource.USER)
    external_id = models.CharField(max_length=128, blank=True, help_text="The app's id for app-created goals.")
    rationale = models.TextField(blank=True, help_text="Why the goal was suggested (coach, staff).")
    source_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="occurredAt of the last app event applied (ordering)."
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "crm_health_goals"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "status", "-created_at"], name="crm_goal_user_status_idx"),
            models.Index(fields=["user", "-created_at"], name="crm_goal_user_created_idx"),
            models.Index(fields=["status"], name="crm_goal_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(goal_type__in=GoalType.values), name="crm_goal_type_valid"),
            models.CheckConstraint(condition=Q(metric__in=GoalMetric.values), name="crm_goal_metric_valid"),
            models.CheckConstraint(
                condition=reduce(
                    operator.or_,
                    (
                        Q(goal_type=goal_type, metric__in=list(metrics))
                        for goal_type, metrics in GOAL_TYPE_METRICS.items()
                    ),
                ),
                name="crm_goal_metric_fits_type",
            ),
            models.CheckConstraint(condition=Q(status__in=GoalStatus.values), name="crm_goal_status_valid"),
            models.CheckConstraint(condition=Q(priority__in=GoalPriority.values), name="crm_goal_priority_valid"),
            models.CheckConstraint(condition=Q(source__in=GoalSource.values), name="crm_goal_source_valid"),
            models.CheckConstraint(
                condition=Q(progress_pct__gte=0, progress_pct__lte=100), name="crm_goal_progress_range"
            ),
            models.CheckConstraint(condition=Q(goal_value__gt=0), name="crm_goal_value_positive"),
            models.UniqueConstraint(
                fields=["user", "external_id"],
                condition=~Q(external_id=""),
                name="crm_goal_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.goal_type} {self.goal_value} {self.goal_unit} ({self.status})"
