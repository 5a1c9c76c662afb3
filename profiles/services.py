"""Writes of the profiles app."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from activities.selectors import engagement_signals_for_users
from coaching.models import InsightSource, InsightType
from coaching.services import insight_create
from compliance.models import ActorType
from compliance.services import audit_record
from profiles.models import CrmUserProfile
from profiles.selectors import churn_risk_estimate, engagement_tier_for

CHURN_BATCH_SIZE = 2000


def churn_assess_users(
    *, user_ids: list[str] | None = None, now: dt.datetime | None = None, actor_type: str = ActorType.SYSTEM
) -> int:
    """Recompute churn_risk and its factors for the given users (all users when None), in id batches.

    Writes one audit row per batch rather than per user: the change is a system recomputation and
    the per-user factors are kept on the profile itself.
    """
    now = now or timezone.now()
    profiles = CrmUserProfile.objects.order_by("id").only("id", "user_id", "last_active_at")
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
        for profile in batch:
            profile.churn_risk, profile.churn_factors = churn_risk_estimate(
                signals=signals[profile.user_id], last_active_at=profile.last_active_at, now=now
            )
            profile.churn_assessed_at = now
        with transaction.atomic():
            CrmUserProfile.objects.bulk_update(batch, ["churn_risk", "churn_factors", "churn_assessed_at"])
            audit_record(
                actor_type=actor_type,
                actor_id="churn_assessment",
                action="profile.churn_assessed",
                entity_type="profile",
                changes={"users": len(batch)},
            )
        assessed += len(batch)


def engagement_tier_refresh(*, user_ids: list[str], now: dt.datetime | None = None) -> int:
    """Set each user's engagement tier to what their activity data justify (system recomputation)."""
    changed = 0
    for start in range(0, len(user_ids), CHURN_BATCH_SIZE):
        chunk = user_ids[start : start + CHURN_BATCH_SIZE]
        signals = engagement_signals_for_users(user_ids=chunk, now=now)
        profiles = list(CrmUserProfile.objects.filter(user_id__in=chunk).only("id", "user_id", "engagement_tier"))
        updated = []
        for profile in profiles:
            tier = engagement_tier_for(signals[profile.user_id])
            if tier != profile.engagement_tier:
                profile.engagement_tier = tier
                updated.append(profile)
        with transaction.atomic():
            CrmUserProfile.objects.bulk_update(updated, ["engagement_tier"])
            if updated:
                audit_record(
                    actor_type=ActorType.SYSTEM,
                    actor_id="engagement_tier_refresh",
                    action="profile.tiers_refreshed",
                    entity_type="profile",
                    changes={"users": len(updated)},
                )
        changed += len(updated)
    return changed


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
