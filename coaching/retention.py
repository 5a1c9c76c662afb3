"""Retention: churn risk, engagement tiers and the weekly retention job (combine activities and profiles).

Churn risk is a transparent weighted score over the user's activity signals; staff see every
factor in admin and the metrics endpoint. Tiers follow the same signals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from activities.selectors import EngagementSignals, activity_streak_days, engagement_signals_for_users
from coaching.engagement import engagement_tier_for
from coaching.models import InsightSource, InsightType
from coaching.services import insight_create
from compliance.services import audit_record
from profiles.models import CrmUserProfile
from profiles.services import profiles_tier_changed_outbox_record_many
from yahealthy_crm.actors import ActorType

CHURN_BATCH_SIZE = 2000

# Weights sum to 1.0.
CHURN_WEIGHTS = {"inactivity": 0.45, "low_volume": 0.25, "declining": 0.15, "irregular": 0.15}
INACTIVITY_FULL_RISK_DAYS = 30
VOLUME_HEALTHY_30D = 60  # about two logs a day


def churn_risk_estimate(
    *, signals: EngagementSignals, last_active_at: dt.datetime | None, now: dt.datetime
) -> tuple[Decimal, dict]:
    """Probability-like churn score in [0, 1] and the factors behind it."""
    last_seen = max(filter(None, [signals.last_activity_at, last_active_at]), default=None)
    days_inactive = (now - last_seen).total_seconds() / 86400 if last_seen else INACTIVITY_FULL_RISK_DAYS
    inactivity = min(max(days_inactive, 0) / INACTIVITY_FULL_RISK_DAYS, 1.0)
    low_volume = 1.0 - min(signals.activities_30d / VOLUME_HEALTHY_30D, 1.0)
    if signals.activities_prev_7d:
        declining = max(0.0, 1.0 - signals.activities_7d / signals.activities_prev_7d)
    else:
        declining = 0.0 if signals.activities_7d else 1.0
    irregular = 1.0 - signals.active_days_14d / 14
    components = {
        "inactivity": inactivity,
        "low_volume": low_volume,
        "declining": declining,
        "irregular": irregular,
    }
    risk = sum(CHURN_WEIGHTS[name] * value for name, value in components.items())
    factors = {
        "daysInactive": round(days_inactive, 1),
        "activities7d": signals.activities_7d,
        "activitiesPrev7d": signals.activities_prev_7d,
        "activities30d": signals.activities_30d,
        "activeDays14d": signals.active_days_14d,
        "components": {name: round(value, 3) for name, value in components.items()},
    }
    return Decimal(str(round(min(max(risk, 0.0), 1.0), 3))), factors


@dataclass(frozen=True)
class UserMetrics:
    user_id: str
    activities_7d: int
    activities_30d: int
    active_days_14d: int
    current_streak_days: int
    last_active_at: dt.datetime | None
    engagement_tier: str  # stored on the profile
    engagement_tier_suggested: str  # what the activity data justify (engagement_tier_for)
    churn_risk: float  # live
    churn_factors: dict  # churn_risk_estimate's factors (the shape stored on the profile)
    churn_risk_stored: float  # the last weekly assessment
    churn_assessed_at: dt.datetime | None


def user_metrics_get(*, profile: CrmUserProfile, now: dt.datetime | None = None) -> UserMetrics:
    """Engagement metrics of one user: activity counts, streak, last active, tier and live churn risk."""
    now = now or timezone.now()
    signals = engagement_signals_for_users(user_ids=[profile.user_id], now=now)[profile.user_id]
    churn_risk, churn_factors = churn_risk_estimate(signals=signals, last_active_at=profile.last_active_at, now=now)
    return UserMetrics(
        user_id=profile.user_id,
        activities_7d=signals.activities_7d,
        activities_30d=signals.activities_30d,
        active_days_14d=signals.active_days_14d,
        current_streak_days=activity_streak_days(user_id=profile.user_id, today=timezone.localdate(now)),
        last_active_at=max(filter(None, [signals.last_activity_at, profile.last_active_at]), default=None),
        engagement_tier=profile.engagement_tier,
        engagement_tier_suggested=engagement_tier_for(signals).value,
        churn_risk=float(churn_risk),
        churn_factors=churn_factors,
        churn_risk_stored=float(profile.churn_risk),
        churn_assessed_at=profile.churn_assessed_at,
    )


def churn_assess_users(
    *,
    user_ids: list[str] | None = None,
    now: dt.datetime | None = None,
    actor_type: str = ActorType.SYSTEM,
    refresh_tiers: bool = False,
) -> int:
    """Recompute churn_risk and its factors for the given users (all users when None), in id batches.

    With `refresh_tiers` the engagement tier is also set to what the same activity signals justify
    (demo data; the coach moves tiers one step at a time instead). Writes one audit row per batch
    rather than per user: the change is a system recomputation and the per-user factors are kept on
    the profile itself.
    """
    now = now or timezone.now()
    profiles = CrmUserProfile.objects.order_by("id").only("id", "user_id", "last_active_at", "engagement_tier")
    if user_ids is not None:
        profiles = profiles.filter(user_id__in=user_ids)
    assessed = 0
    last_id = 0
    while True:
        batch = list(profiles.filter(id__gt=last_id)[:CHURN_BATCH_SIZE])
        if not batch:
            return assessed
        last_id = batch[-1].id
        signals = engagement_signals_for_users(user_ids=[p.user_id for p in batch], now=now)
        tier_changes: list[tuple[CrmUserProfile, str]] = []  # (profile, previous tier): synced out
        for profile in batch:
            profile.churn_risk, profile.churn_factors = churn_risk_estimate(
                signals=signals[profile.user_id], last_active_at=profile.last_active_at, now=now
            )
            profile.churn_assessed_at = now
            if refresh_tiers:
                previous = profile.engagement_tier
                profile.engagement_tier = engagement_tier_for(signals[profile.user_id])
                if profile.engagement_tier != previous:
                    tier_changes.append((profile, previous))
        fields = ["churn_risk", "churn_factors", "churn_assessed_at", *(["engagement_tier"] if refresh_tiers else [])]
        with transaction.atomic():
            CrmUserProfile.objects.bulk_update(batch, fields)
            profiles_tier_changed_outbox_record_many(changes=tier_changes, origin=actor_type)
            audit_record(
                actor_type=actor_type,
                actor_id="churn_assessment",
                action="profile.churn_assessed",
                entity_type="profile",
                changes={"users": len(batch)},
            )
        assessed += len(batch)


RETENTION_INACTIVE_DAYS = 7
RETENTION_MAX_ACTIVITIES_30D = 5


def churn_retention_run(*, now: dt.datetime | None = None) -> dict:
    """Seed's weekly job: reassess churn risk for everyone, then suggest a retention action to users
    inactive for more than 7 days with fewer than 5 activities in 30 days (AI consent required).
    A user who got a retention insight in the last 7 days is not nudged again.
    """
    now = now or timezone.now()
    assessed = churn_assess_users(now=now)
    at_risk = (
        CrmUserProfile.objects.filter(
            consent_ai_processing=True,
            churn_factors__daysInactive__gt=RETENTION_INACTIVE_DAYS,
            churn_factors__activities30d__lt=RETENTION_MAX_ACTIVITIES_30D,
        )
        .exclude(insights__source=InsightSource.CHURN_JOB, insights__created_at__gte=now - dt.timedelta(days=7))
        .only("user_id", "primary_goal", "churn_risk", "churn_factors")
    )
    nudged = 0
    for profile in at_risk.iterator(chunk_size=1000):
        days = int(profile.churn_factors.get("daysInactive", 0))
        focus = {
            "weight_loss": "log one meal a day",
            "muscle_gain": "log your protein at dinner",
        }.get(profile.primary_goal, "log one glass of water a day")
        insight_create(
            user_id=profile.user_id,
            title="We miss you",
            body=f"It has been {days} days since your last log. Small steps keep your streak alive.",
            recommendation=f"Restart with one tiny habit this week: {focus}.",
            insight_type=InsightType.RETENTION,
            source=InsightSource.CHURN_JOB,
            actor_type=ActorType.SYSTEM,
            actor_id="weekly_churn_assessment",
            metadata={"churnRisk": float(profile.churn_risk)},
        )
        nudged += 1
    return {"assessed": assessed, "nudged": nudged}
