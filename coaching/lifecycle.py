"""The daily engagement refresh: engagement tiers, lifecycle stages, goal progress and streaks.

One job (`engagement_daily_refresh`, Celery `coaching.tasks.daily_engagement_job`, beat 05:30 before
the 06:00 daily insights) recomputes, for every user in id batches, with a constant number of
queries per batch whatever its size:
- the engagement tier the activity justifies (`coaching.engagement.engagement_tier_for`), up or down;
- the lifecycle stage (`lifecycle_stage_for`, definitions in docs/retention.md "Lifecycle");
- progress and streaks of every active goal (`goals.services.goals_progress_refresh_for_users`, the
  same rule as after each activity), so a user who stopped logging shows a broken streak.
Tier and stage changes are audited (actor `system`, one row per changed user and kind, one INSERT
per batch) and go to the app through the outbox (`profile.tier_changed`, `profile.stage_changed`).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from activities.selectors import (
    LIFECYCLE_WINDOW_DAYS,
    LifecycleSignals,
    engagement_signals_for_users,
    lifecycle_signals_for_users,
)
from coaching.engagement import engagement_tier_for
from coaching.privacy import ai_embeddings_drop_unconsented
from compliance.services import audit_record_many, audit_row_build
from goals.services import goals_progress_refresh_for_users
from profiles.models import CrmUserProfile, LifecycleStage, tier_rank
from profiles.queries import profiles_lock
from profiles.services import profiles_lifecycle_changed_outbox_record_many, profiles_tier_changed_outbox_record_many
from yahealthy_crm.actors import ActorType

DAILY_REFRESH_BATCH_SIZE = 500
DAILY_REFRESH_ACTOR_ID = "daily_engagement_refresh"
_PROFILE_FIELDS = ("id", "user_id", "engagement_tier", "lifecycle_stage", "lifecycle_changed_at", "created_at")


def lifecycle_stage_for(*, signals: LifecycleSignals, created_at: dt.datetime, now: dt.datetime) -> LifecycleStage:
    """The lifecycle stage at `now` (docs/retention.md "Lifecycle"), with R = (now - 14d, now] and
    P = (now - 28d, now - 14d] over engagement activities:

    - new: active in R and never active before R; or never active and created in R
    - current: active in R and in P
    - resurrected: active in R, not in P, but active before P (so away at least the 14 days of P)
    - dormant: not active in R, and active before or created before R
    """
    if not signals.active_recent:
        recently_created = created_at > now - dt.timedelta(days=LIFECYCLE_WINDOW_DAYS)
        if not signals.active_before_recent and recently_created:
            return LifecycleStage.NEW
        return LifecycleStage.DORMANT
    if not signals.active_before_recent:
        return LifecycleStage.NEW
    if signals.active_previous:
        return LifecycleStage.CURRENT
    return LifecycleStage.RESURRECTED


def engagement_daily_refresh(*, now: dt.datetime | None = None, user_ids: list[str] | None = None) -> dict:
    """Recompute tiers, lifecycle stages and goal progress/streaks of all users (or `user_ids`).

    Per batch of DAILY_REFRESH_BATCH_SIZE profiles: one read of the batch, one grouped read of the
    engagement signals, one of the lifecycle signals, then in one transaction at most one bulk UPDATE
    of the profiles, one audit INSERT, one outbox INSERT per change kind and the goal refresh (at most
    four). Idempotent: a second run on the same day changes nothing. Returns counts.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    profiles = CrmUserProfile.objects.order_by("id").only(*_PROFILE_FIELDS)
    if user_ids is not None:
        profiles = profiles.filter(user_id__in=user_ids)
    counts = {"considered": 0, "tiers_up": 0, "tiers_down": 0, "lifecycle_changed": 0, "goals_updated": 0}
    last_id = 0
    while True:
        batch = list(profiles.filter(id__gt=last_id)[:DAILY_REFRESH_BATCH_SIZE])
        if not batch:
            break
        last_id = batch[-1].id
        _refresh_batch(batch=batch, now=now, today=today, counts=counts)
        counts["considered"] += len(batch)
    counts["processed"] = counts["considered"]
    if user_ids is None:
        # Safety net of the consent rule (coaching/privacy.py): embeddings a race left behind.
        counts["embeddings_dropped"] = sum(ai_embeddings_drop_unconsented().values())
    return counts


def _refresh_batch(*, batch: list[CrmUserProfile], now: dt.datetime, today: dt.date, counts: dict) -> None:
    ids = [profile.user_id for profile in batch]
    engagement = engagement_signals_for_users(user_ids=ids, now=now)
    lifecycle = lifecycle_signals_for_users(user_ids=ids, now=now)
    tier_changes: list[tuple[CrmUserProfile, str]] = []  # (profile, previous tier)
    stage_changes: list[tuple[CrmUserProfile, str]] = []  # (profile, previous stage)
    audit_rows = []
    for profile in batch:
        signals = engagement[profile.user_id]
        tier = engagement_tier_for(signals).value
        if tier != profile.engagement_tier:
            previous = profile.engagement_tier
            counts["tiers_up" if tier_rank(tier) > tier_rank(previous) else "tiers_down"] += 1
            profile.engagement_tier = tier
            tier_changes.append((profile, previous))
            audit_rows.append(
                audit_row_build(
                    actor_type=ActorType.SYSTEM,
                    actor_id=DAILY_REFRESH_ACTOR_ID,
                    action="profile.engagement_tier_changed",
                    entity_type="profile",
                    entity_id=profile.pk,
                    user_id=profile.user_id,
                    changes={
                        "engagement_tier": {"old": previous, "new": tier},
                        "activeDays14d": signals.active_days_14d,
                        "activities30d": signals.activities_30d,
                    },
                )
            )
        stage = lifecycle_stage_for(signals=lifecycle[profile.user_id], created_at=profile.created_at, now=now).value
        if stage != profile.lifecycle_stage:
            previous = profile.lifecycle_stage
            profile.lifecycle_stage, profile.lifecycle_changed_at = stage, now
            stage_changes.append((profile, previous))
            audit_rows.append(
                audit_row_build(
                    actor_type=ActorType.SYSTEM,
                    actor_id=DAILY_REFRESH_ACTOR_ID,
                    action="profile.lifecycle_changed",
                    entity_type="profile",
                    entity_id=profile.pk,
                    user_id=profile.user_id,
                    changes={"lifecycle_stage": {"old": previous, "new": stage}},
                )
            )
    changed = {id(p): p for p, _ in tier_changes + stage_changes}
    counts["lifecycle_changed"] += len(stage_changes)
    with transaction.atomic():
        # This chunk writes profiles and goals of many users: their profiles are locked first, in the
        # one order every multi-user writer uses (no deadlock with webhook batches).
        profiles_lock(user_ids=ids)
        if changed:
            for profile in changed.values():
                profile.updated_at = now
            CrmUserProfile.objects.bulk_update(
                list(changed.values()), ["engagement_tier", "lifecycle_stage", "lifecycle_changed_at", "updated_at"]
            )
        audit_record_many(audit_rows)
        profiles_tier_changed_outbox_record_many(changes=tier_changes, origin=ActorType.SYSTEM)
        profiles_lifecycle_changed_outbox_record_many(changes=stage_changes, origin=ActorType.SYSTEM)
        counts["goals_updated"] += goals_progress_refresh_for_users(user_ids=ids, today=today)
