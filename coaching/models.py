from django.conf import settings
from django.db import models
from django.db.models import Q
from pgvector.django import HnswIndex, VectorField


class InsightType(models.TextChoices):
    NUTRITION = "nutrition"
    ACTIVITY = "activity"
    HYDRATION = "hydration"
    SLEEP = "sleep"
    WEIGHT = "weight"
    ENGAGEMENT = "engagement"
    RETENTION = "retention"
    GENERAL = "general"


class InsightSource(models.TextChoices):
    AI_ASSISTANT = "ai_assistant"
    DAILY_JOB = "daily_job"
    CHURN_JOB = "churn_job"
    STAFF = "staff"


class AiInsight(models.Model):
    """A personalised insight shown to the user until dismissed (crm_ai_insights)."""

    user = models.ForeignKey(
        "profiles.CrmUserProfile",
        to_field="user_id",
        db_column="user_id",
        db_index=False,  # the composite (user_id, ...) indexes below serve every lookup by user
        on_delete=models.CASCADE,
        related_name="insights",
    )
    insight_type = models.CharField(max_length=16, choices=InsightType.choices, default=InsightType.GENERAL)
    title = models.CharField(max_length=200)
    body = models.TextField()
    recommendation = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=InsightSource.choices, default=InsightSource.AI_ASSISTANT)
    coaching_session = models.ForeignKey(
        "coaching.CoachingSession", null=True, blank=True, on_delete=models.SET_NULL, related_name="insights"
    )
    metadata = models.JSONField(default=dict, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "crm_ai_insights"
        verbose_name = "AI insight"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="crm_insight_user_created_idx"),
            models.Index(
                fields=["user", "-created_at"],
                condition=Q(dismissed_at__isnull=True),
                name="crm_insight_user_open_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(insight_type__in=InsightType.values), name="crm_insight_type_valid"),
            models.CheckConstraint(condition=Q(source__in=InsightSource.values), name="crm_insight_source_valid"),
        ]

    def __str__(self) -> str:
        return self.title


class CoachingStatus(models.TextChoices):
    SUCCESS = "success"
    FALLBACK = "fallback"
    ERROR = "error"


class CoachingSession(models.Model):
    """One question to the AI coach and its answer (crm_coaching_sessions). Texts are PII-redacted."""

    user = models.ForeignKey(
        "profiles.CrmUserProfile",
        to_field="user_id",
        db_column="user_id",
        db_index=False,  # the composite (user_id, ...) indexes below serve every lookup by user
        on_delete=models.CASCADE,
        related_name="coaching_sessions",
    )
    message = models.TextField()
    response = models.TextField(blank=True)
    tools_used = models.JSONField(default=list, blank=True, help_text="Tool names in call order.")
    tool_calls = models.JSONField(default=list, blank=True, help_text="Arguments and result summaries.")
    provider = models.CharField(max_length=16)
    model = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=CoachingStatus.choices, default=CoachingStatus.SUCCESS)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    summary = models.TextField(blank=True, help_text="The coach's own summary (log_coaching_session).")
    fallback_reason = models.CharField(
        max_length=32, blank=True, help_text="Why the offline coach answered instead of the model."
    )
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "crm_coaching_sessions"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="crm_session_user_created_idx"),
            models.Index(
                fields=["user"],
                include=["id", "embedding"],
                condition=Q(embedding__isnull=False),
                name="crm_session_user_vector_idx",
            ),
            HnswIndex(
                name="crm_session_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CoachingStatus.values), name="crm_session_status_valid"),
        ]

    def __str__(self) -> str:
        return f"session {self.pk} ({self.user_id})"
