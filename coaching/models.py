import uuid

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
    # The day a job's insight is for (CRM_TIME_ZONE): one daily insight per user and day.
    insight_date = models.DateField(null=True, blank=True)
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
            models.UniqueConstraint(
                fields=["user", "source", "insight_date"],
                condition=Q(insight_date__isnull=False),
                name="crm_insight_one_per_job_day",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class CoachingStatus(models.TextChoices):
    SUCCESS = "success"
    FALLBACK = "fallback"
    ERROR = "error"


class CoachingConversation(models.Model):
    """A conversation with the coach: the turns (coaching sessions) an ask continues by its id.

    The id is a random UUID the API hands out (`conversationId`); it is only ever looked up together
    with the user it belongs to, so another user's id is simply not found.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        "profiles.CrmUserProfile",
        to_field="user_id",
        db_column="user_id",
        db_index=False,  # served by the (user_id, -last_turn_at) index below
        on_delete=models.CASCADE,
        related_name="coaching_conversations",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_turn_at = models.DateTimeField()

    class Meta:
        db_table = "crm_coaching_conversations"
        ordering = ["-last_turn_at"]
        indexes = [models.Index(fields=["user", "-last_turn_at"], name="crm_conversation_user_last_idx")]

    def __str__(self) -> str:
        return f"conversation {self.pk} ({self.user_id})"


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
    conversation = models.ForeignKey(
        CoachingConversation, on_delete=models.CASCADE, db_index=False, related_name="turns"
    )
    message = models.TextField()
    response = models.TextField(blank=True)
    topics = models.JSONField(
        default=list, blank=True, help_text="What the turn was about (follow-ups such as 'and carbs?' resolve to it)."
    )
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
            models.Index(fields=["conversation", "-created_at"], name="crm_session_conversation_idx"),
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


class ChurnModelKind(models.TextChoices):
    FITTED = "fitted"  # scikit-learn, trained on this deployment's history
    FALLBACK_RULE = "fallback_rule"  # too little history: the documented rule (docs/retention.md)


class ChurnModel(models.Model):
    """A churn model version: how it was trained, how good it is, and the fitted estimator itself."""

    version = models.PositiveIntegerField(unique=True)
    kind = models.CharField(max_length=16, choices=ChurnModelKind.choices)
    trained_at = models.DateTimeField()
    horizon_days = models.PositiveSmallIntegerField(help_text="Label: no activity in this many days after the cutoff.")
    training_rows = models.PositiveIntegerField(default=0)
    training_cutoffs = models.JSONField(default=list, blank=True)
    features = models.JSONField(default=list, blank=True, help_text="Feature names, in the estimator's order.")
    quality = models.JSONField(
        default=dict,
        blank=True,
        help_text="Backtest: ROC AUC, Brier score, high-band lift, and the rule's on the same cutoffs.",
    )
    estimator = models.BinaryField(null=True, blank=True, help_text="The fitted scikit-learn pipeline (joblib).")
    is_active = models.BooleanField(default=False)
    notes = models.TextField(blank=True)

    class Meta:
        db_table = "crm_churn_models"
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="crm_churn_model_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"churn model v{self.version} ({self.kind})"


class ChurnScoreWeekly(models.Model):
    """A user's churn score, band, tier and lifecycle stage in one week (trends, "crossed into high")."""

    user = models.ForeignKey(
        "profiles.CrmUserProfile",
        to_field="user_id",
        db_column="user_id",
        on_delete=models.CASCADE,
        related_name="churn_history",
    )
    week = models.DateField(help_text="Monday of the week (CRM_TIME_ZONE).")
    churn_risk = models.DecimalField(max_digits=4, decimal_places=3)
    churn_band = models.CharField(max_length=8)
    engagement_tier = models.CharField(max_length=16)
    lifecycle_stage = models.CharField(max_length=12)
    model_version = models.PositiveIntegerField(null=True, blank=True)
    factors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "crm_churn_history"
        ordering = ["-week"]
        constraints = [models.UniqueConstraint(fields=["user", "week"], name="crm_churn_history_user_week")]
        indexes = [models.Index(fields=["week", "churn_band"], name="crm_churn_hist_week_band_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.week}: {self.churn_risk} ({self.churn_band})"


class RetentionActionType(models.TextChoices):
    EASIER_GOAL = "easier_goal"
    STREAK_RESTART = "streak_restart"
    REMINDER = "reminder"
    STAFF_CALL = "staff_call"


class RetentionActionSource(models.TextChoices):
    JOB = "job"
    STAFF = "staff"


class RetentionAction(models.Model):
    """A retention action taken for a user and whether they came back within the outcome window."""

    user = models.ForeignKey(
        "profiles.CrmUserProfile",
        to_field="user_id",
        db_column="user_id",
        on_delete=models.CASCADE,
        related_name="retention_actions",
    )
    action_type = models.CharField(max_length=16, choices=RetentionActionType.choices)
    source = models.CharField(max_length=8, choices=RetentionActionSource.choices)
    actor_id = models.CharField(max_length=128, blank=True)
    insight = models.ForeignKey(AiInsight, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    churn_risk = models.DecimalField(max_digits=4, decimal_places=3)
    churn_band = models.CharField(max_length=8)
    drivers = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    outcome_due_at = models.DateTimeField(help_text="created_at + the outcome window (14 days).")
    returned = models.BooleanField(null=True, blank=True, help_text="Any activity by outcome_due_at (null: pending).")
    returned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "crm_retention_actions"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["action_type", "churn_band"], name="crm_retention_type_idx"),
            models.Index(
                fields=["outcome_due_at"], condition=Q(returned__isnull=True), name="crm_retention_pending_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(action_type__in=RetentionActionType.values), name="crm_retention_action_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_type} for {self.user_id} ({self.created_at:%Y-%m-%d})"


class JobRunStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobRun(models.Model):
    """One run of a background job (daily insights, weekly churn, daily lifecycle), however triggered."""

    job = models.CharField(max_length=32)
    trigger = models.CharField(max_length=16, help_text="beat, api, command")
    status = models.CharField(max_length=16, choices=JobRunStatus.choices, default=JobRunStatus.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    considered = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "crm_job_runs"
        ordering = ["-started_at"]
        constraints = [
            # A second trigger while a run is going does not start another (design: no double work).
            models.UniqueConstraint(fields=["job"], condition=Q(status="running"), name="crm_job_one_running"),
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.status} ({self.started_at:%Y-%m-%d %H:%M})"


class StaffAlert(models.Model):
    """An alert sent to staff (CRM_ALERT_EMAILS) and flagged in admin, once per `key`."""

    kind = models.CharField(max_length=16, help_text="high_risk, dead_letter")
    key = models.CharField(max_length=128, unique=True, help_text="What makes it once: e.g. high_risk:<user>:<week>.")
    user_id = models.CharField(max_length=64, blank=True)
    sync_event_id = models.BigIntegerField(null=True, blank=True)
    message = models.TextField()
    emailed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "crm_staff_alerts"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"
