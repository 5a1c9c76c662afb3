"""Retention: churn scores for every user (coaching/churn_model.py), the metrics endpoint's view of
a user, and the weekly retention job."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from activities.selectors import activity_streak_days, engagement_signals_for_users
from coaching.churn_model import churn_model_ensure, churn_scores_compute, churn_scores_iter
from coaching.engagement import engagement_tier_for
from coaching.queries import churn_scores_write
from compliance.services import audit_record
from profiles.models import CrmUserProfile, churn_band_for
from profiles.services import profiles_tier_changed_outbox_record_many
from yahealthy_crm.actors import ActorType


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
    churn_risk: float  # live, from the active churn model
    churn_band: str
    churn_factors: dict  # the model's factors (the shape stored on the profile)
    churn_risk_stored: float  # the last weekly assessment
    churn_assessed_at: dt.datetime | None


def user_metrics_get(*, profile: CrmUserProfile, now: dt.datetime | None = None) -> UserMetrics:
    """Engagement metrics of one user: activity counts, streak, last active, tier and live churn risk."""
    now = now or timezone.now()
    signals = engagement_signals_for_users(user_ids=[profile.user_id], now=now)[profile.user_id]
    scores = churn_scores_compute(now=now, user_ids=[profile.user_id])
    churn_risk, churn_factors = (scores[0].risk, scores[0].factors) if scores else (0.0, {})
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
        churn_band=churn_band_for(churn_risk).value,
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
    progress=None,
) -> int:
    """Score every user (or `user_ids`) with the active churn model (retrained when a week old), store
    risk, band and factors on the profile and in this week's history, a batch of users at a time
    (`coaching.queries.STREAM_CHUNK`).

    Features for all users come from one set-based statement; each batch is two writes and one audit
    row (the per-user factors are kept on the profile itself). With `refresh_tiers` the engagement
    tier is also set to what the activity justifies (demo data; the daily engagement refresh does
    this in production). `progress(n)` is called after each batch.
    """
    now = now or timezone.now()
    model = churn_model_ensure(now=now)
    week = churn_week_of(now)
    assessed = 0
    for batch in churn_scores_iter(now=now, user_ids=user_ids, model=model):
        with transaction.atomic():
            churn_scores_write(
                user_ids=[score.user_id for score in batch],
                risks=[score.risk for score in batch],
                bands=[churn_band_for(score.risk).value for score in batch],
                factors=[score.factors for score in batch],
                assessed_at=now,
                week=week,
                model_version=model.version,
            )
            if refresh_tiers:
                _tiers_refresh(user_ids=[score.user_id for score in batch], now=now, actor_type=actor_type)
            audit_record(
                actor_type=actor_type,
                actor_id="churn_assessment",
                action="profile.churn_assessed",
                entity_type="profile",
                changes={"users": len(batch), "modelVersion": model.version, "model": model.kind},
            )
        assessed += len(batch)
        if progress is not None:
            progress(len(batch))
    return assessed


def churn_week_of(moment: dt.datetime) -> dt.date:
    """Monday of the week (CRM_TIME_ZONE) a score belongs to."""
    day = timezone.localdate(moment)
    return day - dt.timedelta(days=day.weekday())


def _tiers_refresh(*, user_ids: list[str], now: dt.datetime, actor_type: str) -> None:
    signals = engagement_signals_for_users(user_ids=user_ids, now=now)
    profiles = list(CrmUserProfile.objects.filter(user_id__in=user_ids).only("id", "user_id", "engagement_tier"))
    changes = []
    for profile in profiles:
        previous = profile.engagement_tier
        profile.engagement_tier = engagement_tier_for(signals[profile.user_id])
        if profile.engagement_tier != previous:
            changes.append((profile, previous))
    CrmUserProfile.objects.bulk_update([profile for profile, _ in changes], ["engagement_tier"])
    profiles_tier_changed_outbox_record_many(changes=changes, origin=actor_type)
