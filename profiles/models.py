from django.db import models
from django.db.models import Q


class EngagementTier(models.TextChoices):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


TIER_ORDER = [EngagementTier.BRONZE, EngagementTier.SILVER, EngagementTier.GOLD, EngagementTier.PLATINUM]


class LifecycleStage(models.TextChoices):
    """Amplitude/PostHog-style lifecycle (definitions in docs/retention.md, computed daily)."""

    NEW = "new"
    CURRENT = "current"
    RESURRECTED = "resurrected"
    DORMANT = "dormant"


class ChurnBand(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# The one home of the churn bands: low < 0.5 <= medium < 0.75 <= high.
CHURN_BAND_MEDIUM_FROM = 0.5
CHURN_BAND_HIGH_FROM = 0.75


def churn_band_for(risk: float) -> ChurnBand:
    if risk >= CHURN_BAND_HIGH_FROM:
        return ChurnBand.HIGH
    if risk >= CHURN_BAND_MEDIUM_FROM:
        return ChurnBand.MEDIUM
    return ChurnBand.LOW


class ActivityLevel(models.TextChoices):
    SEDENTARY = "sedentary"
    LIGHT = "light"
    MODERATE = "moderate"
    ACTIVE = "active"
    VERY_ACTIVE = "very_active"


class PrimaryGoal(models.TextChoices):
    WEIGHT_LOSS = "weight_loss"
    MUSCLE_GAIN = "muscle_gain"
    GENERAL_HEALTH = "general_health"


# Health-profile fields whose staff-verified values win over app updates (seed: "CRM data wins").
HEALTH_PROFILE_FIELDS = ("age", "height_cm", "current_weight_kg", "activity_level", "primary_goal")


class CrmUserProfile(models.Model):
    """One app user as the CRM sees them (crm_user_profiles)."""

    # Unique by Meta.constraints (the foreign keys' target), not `unique=True`: see crm_user_profiles_user_id_key.
    user_id = models.CharField(max_length=64, help_text="The YAHealthy app's user id.")
    age = models.PositiveSmallIntegerField(null=True, blank=True)
    height_cm = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    current_weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    activity_level = models.CharField(max_length=16, choices=ActivityLevel.choices, blank=True)
    primary_goal = models.CharField(max_length=16, choices=PrimaryGoal.choices, blank=True)
    engagement_tier = models.CharField(max_length=8, choices=EngagementTier.choices, default=EngagementTier.BRONZE)
    churn_risk = models.DecimalField(max_digits=4, decimal_places=3, default=0)
    churn_factors = models.JSONField(default=dict, blank=True)
    churn_assessed_at = models.DateTimeField(null=True, blank=True)
    churn_band = models.CharField(max_length=8, choices=ChurnBand.choices, default=ChurnBand.LOW)
    lifecycle_stage = models.CharField(max_length=12, choices=LifecycleStage.choices, default=LifecycleStage.NEW)
    lifecycle_changed_at = models.DateTimeField(null=True, blank=True)
    # Not indexed: every app event moves it, and with no index on it that UPDATE is a HOT update
    # (no new entries in the table's other indexes; docs/sync.md "Benchmark"). Its readers (inactive
    # segments, the daily insight selection) scan or use other indexes anyway.
    last_active_at = models.DateTimeField(null=True, blank=True)
    # Consent (design.md "Compliance"): AI processing granted unless the app says otherwise.
    consent_ai_processing = models.BooleanField(default=True)
    consent_ai_processing_at = models.DateTimeField(null=True, blank=True)
    consent_marketing = models.BooleanField(default=False)
    consent_marketing_at = models.DateTimeField(null=True, blank=True)
    # Keyed hashes only; the CRM never stores raw contact details.
    email_hash = models.CharField(max_length=64, blank=True)
    phone_hash = models.CharField(max_length=64, blank=True)
    # Per-field provenance for conflict rules: {"age": {"source": "staff", "verified": true,
    # "updated_at": "2026-01-01T00:00:00+00:00"}, ...}
    field_provenance = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "crm_user_profiles"
        verbose_name = "user profile"
        ordering = ["-created_at"]
        # Exporting a segment to CSV is its own right: the "CRM viewer" group may look but not export.
        permissions = [("export_crmuserprofile", "Can export user profiles to CSV")]
        indexes = [
            models.Index(fields=["-churn_risk"], name="crm_profile_churn_risk_idx"),
            models.Index(fields=["churn_band", "-churn_risk"], name="crm_profile_band_idx"),
            models.Index(fields=["lifecycle_stage"], name="crm_profile_lifecycle_idx"),
            models.Index(fields=["-created_at"], name="crm_profile_created_idx"),
            models.Index(fields=["engagement_tier"], name="crm_profile_tier_idx"),
        ]
        constraints = [
            # Constraints, not `unique=True` / `db_index=True` on the fields: those also add
            # varchar_pattern_ops indexes for LIKE 'prefix%', which nothing runs (the admin's search is
            # a case-insensitive "contains"), and which every new row version entered (migration 0007).
            models.UniqueConstraint(fields=["user_id"], name="crm_user_profiles_user_id_key"),
            models.CheckConstraint(
                condition=Q(age__isnull=True) | Q(age__gte=13, age__lte=120), name="crm_profile_age_range"
            ),
            models.CheckConstraint(
                condition=Q(height_cm__isnull=True) | Q(height_cm__gte=50, height_cm__lte=280),
                name="crm_profile_height_range",
            ),
            models.CheckConstraint(
                condition=Q(current_weight_kg__isnull=True) | Q(current_weight_kg__gte=20, current_weight_kg__lte=500),
                name="crm_profile_weight_range",
            ),
            models.CheckConstraint(
                condition=Q(churn_risk__gte=0, churn_risk__lte=1), name="crm_profile_churn_risk_range"
            ),
            models.CheckConstraint(
                condition=Q(engagement_tier__in=EngagementTier.values),
                name="crm_profile_engagement_tier_valid",
            ),
            models.CheckConstraint(
                condition=Q(activity_level="") | Q(activity_level__in=ActivityLevel.values),
                name="crm_profile_activity_level_valid",
            ),
            models.CheckConstraint(
                condition=Q(primary_goal="") | Q(primary_goal__in=PrimaryGoal.values),
                name="crm_profile_primary_goal_valid",
            ),
            models.CheckConstraint(condition=~Q(user_id=""), name="crm_profile_user_id_not_empty"),
        ]

    def __str__(self) -> str:
        return self.user_id


def tier_rank(tier: str) -> int:
    return TIER_ORDER.index(EngagementTier(tier))
