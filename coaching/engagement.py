"""Engagement tiers (and, with them, the daily engagement refresh): what a user's activity justifies.

Tiers follow the activity signals of `activities.selectors.engagement_signals_for_users`; the coach
moves a tier one step at a time (`engagement_tier_step`).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from activities.selectors import EngagementSignals, engagement_signals_for_users
from compliance.services import audit_record
from profiles.models import TIER_ORDER, CrmUserProfile, EngagementTier, tier_rank
from profiles.services import profile_tier_changed_outbox_record


def engagement_tier_for(signals: EngagementSignals) -> EngagementTier:
    """The tier the activity data justify: active days in the last two weeks and 30-day volume."""
    if signals.active_days_14d >= 12 and signals.activities_30d >= 80:
        return EngagementTier.PLATINUM
    if signals.active_days_14d >= 8 and signals.activities_30d >= 40:
        return EngagementTier.GOLD
    if signals.active_days_14d >= 4 and signals.activities_30d >= 12:
        return EngagementTier.SILVER
    return EngagementTier.BRONZE


class EngagementTierError(Exception):
    """The requested tier change is not allowed (message says why; the coach shows it to the model)."""


def engagement_tier_step(
    *, user_id: str, tier: str, actor_type: str, actor_id: str, now: dt.datetime | None = None
) -> tuple[str, str]:
    """Move a user's engagement tier exactly one step toward `tier`, only as far as the activity
    data justify (`engagement_tier_for`). Returns (old, new). Audited.
    """
    if tier not in TIER_ORDER:
        raise EngagementTierError(f"Unknown tier '{tier}'.")
    with transaction.atomic():
        profile = CrmUserProfile.objects.select_for_update().filter(user_id=user_id).first()
        if profile is None:
            raise EngagementTierError("User not found.")
        old = profile.engagement_tier
        step = tier_rank(tier) - tier_rank(old)
        if step == 0:
            raise EngagementTierError(f"The user is already {old}.")
        if abs(step) != 1:
            raise EngagementTierError(f"Tiers move one step at a time: from {old} only to a neighbouring tier.")
        signals = engagement_signals_for_users(user_ids=[user_id], now=now)[user_id]
        justified = engagement_tier_for(signals)
        too_far = tier_rank(justified) < tier_rank(tier) if step > 0 else tier_rank(justified) > tier_rank(tier)
        if too_far:
            raise EngagementTierError(
                f"The activity data justify {justified} (active days in 14: {signals.active_days_14d}, "
                f"activities in 30 days: {signals.activities_30d}), not a move to {tier}."
            )
        profile.engagement_tier = tier
        profile.save(update_fields=["engagement_tier", "updated_at"])
        audit_record(
            actor_type=actor_type,
            actor_id=actor_id,
            action="profile.engagement_tier_changed",
            entity_type="profile",
            entity_id=profile.pk,
            user_id=user_id,
            changes={"engagement_tier": {"old": old, "new": tier}, "justifiedTier": justified.value},
        )
        profile_tier_changed_outbox_record(profile=profile, previous_tier=old, origin=actor_type)
    return old, tier
