"""Reads and pure rules over profiles: churn risk and engagement tier."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import F, QuerySet
from django.utils import timezone

from activities.selectors import EngagementSignals
from profiles.models import TIER_ORDER, CrmUserProfile, EngagementTier

# Churn risk is a transparent weighted score, not a black box: staff see every factor in admin and
# the metrics endpoint. Weights sum to 1.0.
CHURN_WEIGHTS = {"inactivity": 0.45, "low_volume": 0.25, "declining": 0.15, "irregular": 0.15}
INACTIVITY_FULL_RISK_DAYS = 30
VOLUME_HEALTHY_30D = 60  # about two logs a day
CHURN_HIGH_RISK = Decimal("0.7")


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


def engagement_tier_for(signals: EngagementSignals) -> EngagementTier:
    """The tier the activity data justify: active days in the last two weeks and 30-day volume."""
    if signals.active_days_14d >= 12 and signals.activities_30d >= 80:
        return EngagementTier.PLATINUM
    if signals.active_days_14d >= 8 and signals.activities_30d >= 40:
        return EngagementTier.GOLD
    if signals.active_days_14d >= 4 and signals.activities_30d >= 12:
        return EngagementTier.SILVER
    return EngagementTier.BRONZE


def tier_rank(tier: str) -> int:
    return TIER_ORDER.index(EngagementTier(tier))


def profile_get(*, user_id: str) -> CrmUserProfile | None:
    return CrmUserProfile.objects.filter(user_id=user_id).first()


def churn_risk_list(*, min_risk: Decimal) -> QuerySet[CrmUserProfile]:
    """Users at or above `min_risk`, highest risk first (ties: longest inactive, then user id)."""
    return CrmUserProfile.objects.filter(churn_risk__gte=min_risk).order_by(
        "-churn_risk", F("last_active_at").asc(nulls_first=True), "user_id"
    )


def user_metrics_get(*, profile: CrmUserProfile, now: dt.datetime | None = None) -> dict:
    """Engagement metrics of one user: activity counts, streak, last active, tier and live churn risk."""
    from activities.selectors import activity_streak_days, engagement_signals_for_users

    now = now or timezone.now()
    signals = engagement_signals_for_users(user_ids=[profile.user_id], now=now)[profile.user_id]
    churn_risk, churn_factors = churn_risk_estimate(signals=signals, last_active_at=profile.last_active_at, now=now)
    last_active = max(filter(None, [signals.last_activity_at, profile.last_active_at]), default=None)
    return {
        "userId": profile.user_id,
        "activities7d": signals.activities_7d,
        "activities30d": signals.activities_30d,
        "activeDays14d": signals.active_days_14d,
        "currentStreakDays": activity_streak_days(user_id=profile.user_id, today=timezone.localdate(now)),
        "lastActiveAt": last_active.isoformat() if last_active else None,
        "engagementTier": profile.engagement_tier,
        "engagementTierSuggested": engagement_tier_for(signals).value,
        "churnRisk": float(churn_risk),
        "churnFactors": churn_factors,
        "churnRiskStored": float(profile.churn_risk),
        "churnAssessedAt": profile.churn_assessed_at.isoformat() if profile.churn_assessed_at else None,
    }
