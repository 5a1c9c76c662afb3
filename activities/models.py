from django.conf import settings
from django.db import models
from django.db.models import Q
from pgvector.django import HnswIndex, VectorField


class ActivityType(models.TextChoices):
    FOOD_LOG = "food_log"
    EXERCISE = "exercise"
    WEIGHT_LOG = "weight_log"
    WATER_LOG = "water_log"
    SLEEP_LOG = "sleep_log"
    MILESTONE = "milestone"
    APP_OPEN = "app_open"
    COACHING_REQUEST = "coaching_request"


class ActivitySource(models.TextChoices):
    APP = "app"
    CRM = "crm"
    AI_ASSISTANT = "ai_assistant"
    SYSTEM = "system"


# An app open is a bare engagement ping: nothing to search for, so no embedding.
NOT_EMBEDDED_TYPES = frozenset({ActivityType.APP_OPEN})
# Rows the embedding sweep still has to embed (also the condition of its partial index).
EMBEDDING_PENDING = Q(embedding__isnull=True) & ~Q(activity_type__in=sorted(NOT_EMBEDDED_TYPES))

# The one table of plausible values of an activity's typed columns, (low, high) inclusive. The app's
# payload validation (sync.inbound.schemas) reads it, and so do the CHECK constraints below.
ACTIVITY_VALUE_RANGES: dict[str, tuple[int, int]] = {
    "calories_kcal": (0, 20000),
    "protein_g": (0, 2000),
    "carbs_g": (0, 3000),
    "fat_g": (0, 2000),
    "weight_kg": (20, 500),
    "sleep_hours": (0, 24),
    "water_ml": (1, 20000),
    "exercise_minutes": (0, 1440),
    "calories_burned_kcal": (0, 20000),
    "steps": (0, 200000),
}


def _in_range(column: str, *, lower_bound: bool = True) -> Q:
    """NULL or within ACTIVITY_VALUE_RANGES[column]: the condition of a range CHECK constraint."""
    low, high = ACTIVITY_VALUE_RANGES[column]
    bounds = {f"{column}__gte": low, f"{column}__lte": high} if lower_bound else {f"{column}__lte": high}
    return Q(**{f"{column}__isnull": True}) | Q(**bounds)


class UserActivity(models.Model):
    """Everything a user did: food logs, exercise, weigh-ins, milestones... (crm_user_activities).

    The raw event stays in `payload`; the numbers the CRM aggregates (nutrition snapshot, goal
    progress) are copied into typed columns so the aggregation is plain SQL.
    """

    user = models.ForeignKey(
        "profiles.CrmUserProfile",
        to_field="user_id",
        db_column="user_id",
        db_index=False,  # the composite (user_id, ...) indexes below serve every lookup by user
        on_delete=models.CASCADE,
        related_name="activities",
    )
    activity_type = models.CharField(max_length=24, choices=ActivityType.choices)
    external_id = models.CharField(max_length=128, blank=True)
    source = models.CharField(max_length=16, choices=ActivitySource.choices, default=ActivitySource.APP)
    occurred_at = models.DateTimeField()
    logged_date = models.DateField(help_text="The day the log counts for (the app's 'date', else occurred_at).")
    payload = models.JSONField(default=dict, blank=True)
    calories_kcal = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    protein_g = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    carbs_g = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    fat_g = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True)
    water_ml = models.PositiveIntegerField(null=True, blank=True)
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    sleep_hours = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    exercise_minutes = models.PositiveIntegerField(null=True, blank=True)
    calories_burned_kcal = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    steps = models.PositiveIntegerField(null=True, blank=True)
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS, null=True, blank=True)
    source_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="occurredAt of the last app event applied (ordering)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "crm_user_activities"
        ordering = ["-occurred_at"]
        verbose_name_plural = "user activities"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="crm_activity_user_created_idx"),
            models.Index(fields=["user", "-occurred_at"], name="crm_activity_user_occurred_idx"),
            models.Index(fields=["user", "activity_type", "logged_date"], name="crm_activity_user_type_day_idx"),
            # Exact per-user search reads one user's vectors from this index alone (index-only scan);
            # rows without an embedding (most of a fresh import) cost it nothing.
            models.Index(
                fields=["user"],
                include=["id", "embedding"],
                condition=Q(embedding__isnull=False),
                name="crm_activity_user_vector_idx",
            ),
            # The embedding sweep after app events finds the rows still to embed without a table scan.
            models.Index(
                fields=["id"],
                condition=EMBEDDING_PENDING,
                name="crm_activity_embed_pending_idx",
            ),
            HnswIndex(
                name="crm_activity_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(activity_type__in=ActivityType.values), name="crm_activity_type_valid"),
            models.CheckConstraint(condition=Q(source__in=ActivitySource.values), name="crm_activity_source_valid"),
            models.CheckConstraint(
                condition=_in_range("calories_kcal")
                & _in_range("protein_g")
                & _in_range("carbs_g")
                & _in_range("fat_g"),
                name="crm_activity_nutrition_range",
            ),
            models.CheckConstraint(condition=_in_range("weight_kg"), name="crm_activity_weight_range"),
            models.CheckConstraint(condition=_in_range("sleep_hours"), name="crm_activity_sleep_range"),
            # Only the cap: the check predates the 1 ml floor the payload validation applies (the
            # column is unsigned, so the database already refuses a negative amount).
            models.CheckConstraint(condition=_in_range("water_ml", lower_bound=False), name="crm_activity_water_range"),
            models.UniqueConstraint(
                fields=["user", "activity_type", "external_id"],
                condition=~Q(external_id=""),
                name="crm_activity_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.activity_type} {self.external_id or self.pk}"


class EmbeddingSpace(models.Model):
    """Which embedder wrote the stored vectors (one row; activities.embeddings.embedding_space).

    Vectors of two embedders must never be compared: `manage.py embed_activities` re-embeds every row
    when the configured embedder's space differs from the one recorded here.
    """

    name = models.CharField(max_length=128)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "crm_embedding_space"

    def __str__(self) -> str:
        return self.name


# Typed columns an app event may fill (everything else stays in `payload`).
ACTIVITY_COLUMNS = (
    "calories_kcal",
    "protein_g",
    "carbs_g",
    "fat_g",
    "water_ml",
    "weight_kg",
    "sleep_hours",
    "exercise_minutes",
    "calories_burned_kcal",
    "steps",
)
