"""Writes of the profiles app."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from activities.selectors import engagement_signals_for_users
from compliance.models import ActorType
from compliance.services import audit_record
from profiles.models import CrmUserProfile
from profiles.selectors import churn_risk_estimate

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
