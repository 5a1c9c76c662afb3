"""Writes of the activities app: activity rows from app events and their embeddings."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache, caches
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from activities.app_event_rules import (
    activity_deleted_later_applied,
    activity_event_is_stale,
    activity_stale_applied,
    activity_success_applied,
    activity_values_from_app,
)
from activities.embeddings import embed_texts
from activities.models import (
    ACTIVITY_COLUMNS,
    EMBEDDING_PENDING,
    ActivityType,
    EmbeddingSpace,
    UserActivity,
)
from activities.queries import (
    ActivityEventContext,
    activity_event_context_get,
    activity_insert_statement,
    activity_presumed_new_held,
    embed_sweep_lock_take,
    embeddings_store,
)
from activities.selectors import activity_text
from compliance.services import audit_changes
from profiles.models import CrmUserProfile
from profiles.selectors import ai_consent_granted
from profiles.services import profile_fields_apply_from_app
from sync.app_events import AppliedEvent
from yahealthy_crm.cache import PostgresCache
from yahealthy_crm.queue import task_enqueue
from yahealthy_crm.sql import Statement

logger = logging.getLogger(__name__)


def activity_delete(*, activity: UserActivity) -> None:
    """Remove the activity and, with the row, its embedding."""
    activity.delete()


def activities_missing_embedding() -> QuerySet[UserActivity]:
    """Activities that should have an embedding and have none (new, or changed since embedded), of
    users with AI consent only (design.md "AI coach": only users with AI consent are embedded).

    The consent test is an EXISTS on the profile (its unique user_id index), not part of the partial
    index `crm_activity_embed_pending_idx` (a migration, and an index cannot see another table): the
    sweep still walks that index in id order. Rows of users without consent stay pending and are
    skipped by every sweep; they are embedded if consent is granted again.
    """
    return UserActivity.objects.filter(EMBEDDING_PENDING).filter(ai_consent_granted())


def activity_embeddings_drop(*, user_ids: list[str]) -> int:
    """Remove the embeddings of these users' activities (AI consent withdrawn); returns the rows touched.

    Every row of the users, not only those with an embedding, and `updated_at` moves: a sweep batch
    embedding one of these rows concurrently either stored first (this UPDATE waits for its row lock,
    then clears it) or finds the row changed (`embeddings_store` with check_updated skips it).
    """
    return UserActivity.objects.filter(user_id__in=user_ids).update(embedding=None, updated_at=timezone.now())


def embedding_space_switch(*, space: str, force: bool = False) -> tuple[str | None, int] | None:
    """Record `space` as the one of the stored activity vectors; when another was recorded (or `force`),
    clear every activity vector first. Returns (the previous space, rows cleared), or None when the
    stored vectors already are of `space`.

    Call inside a transaction (the row lock keeps two runs from clearing and recording at once); the
    coaching-session vectors are cleared by the caller (coaching.services.embeddings_space_sync).
    """
    recorded = EmbeddingSpace.objects.select_for_update().order_by("pk").first()
    if recorded is not None and recorded.name == space and not force:
        return None
    stored = UserActivity.objects.filter(embedding__isnull=False)
    if recorded is None and not force and not stored.exists():
        EmbeddingSpace.objects.create(name=space)  # a fresh install: nothing to re-embed
        return None
    # `updated_at` moves, so a sweep batch embedding one of these rows concurrently skips it.
    cleared = stored.update(embedding=None, updated_at=timezone.now())
    if recorded is None:
        EmbeddingSpace.objects.create(name=space)
    else:
        EmbeddingSpace.objects.filter(pk=recorded.pk).update(name=space, updated_at=timezone.now())
    return (recorded.name if recorded else None), cleared


def embeddings_backfill(
    queryset: QuerySet,
    to_text: Callable[[Any], str],
    *,
    batch_size: int = 256,
    check_updated: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Embed the rows of `queryset` (rows without an embedding) in batches of one UPDATE each.

    With `check_updated`, a row changed while its batch was embedded keeps its newer state (and no
    embedding: the next sweep picks it up). Returns how many rows were stored.
    """
    done, last_id = 0, 0
    queryset = queryset.defer("embedding")
    while True:
        batch = list(queryset.filter(pk__gt=last_id).order_by("pk")[:batch_size])
        if not batch:
            return done
        last_id = batch[-1].pk
        vectors = embed_texts([to_text(row) for row in batch])
        done += embeddings_store(queryset.model, batch, vectors, check_updated=check_updated)
        if on_batch is not None:
            on_batch(len(batch))


# Events arriving within this many seconds share one embedding sweep (one task, one batch).
EMBED_SWEEP_DELAY_S = 1
# The flag holds the time (UNIX seconds) the scheduled sweep starts at; it exists from the scheduling
# until that sweep starts.
EMBED_SWEEP_FLAG = "activities:embed-sweep-scheduled"
# If the scheduled sweep never runs (broker or worker down), the next event after this schedules one.
EMBED_SWEEP_FLAG_TTL_S = 60
EMBED_PENDING_TASK = "activities.tasks.activities_embed_pending_task"
# A process that knows a sweep starts at time T skips the flag (a cache round trip per event) for
# commits until T minus this margin: the worker does not start a task before its countdown ends, so
# that sweep reads them. The margin covers clock differences between the web and worker hosts.
EMBED_SWEEP_CLOCK_MARGIN_S = 0.5


class _SweepKnown:
    """When the next embedding sweep this process knows of starts (0: none known). Per process; a
    stale value only costs a cache round trip."""

    starts_at = 0.0


def activity_embeddings_schedule() -> None:
    """Have the worker embed new and changed activities soon: one task per burst, not one per event.

    Call after commit. A sweep already scheduled (and not yet started) will see this commit.
    """
    now = time.time()
    if now < _SweepKnown.starts_at - EMBED_SWEEP_CLOCK_MARGIN_S:
        return  # a sweep is queued to start after now: it will read this commit
    # Never an error for the caller: its rows are committed, and a missed sweep only delays the
    # embeddings until the next event's sweep or the periodic one.
    try:
        # Read first: while a sweep is queued (the common case, and all the time while the worker
        # lags) a commit costs one read, not a write that locks the flag's row.
        scheduled = cache.get(EMBED_SWEEP_FLAG)
        if scheduled is not None:
            # Queued and not started (the sweep clears the flag before it reads): it will read this
            # commit. Learn when it starts.
            if isinstance(scheduled, float):
                _SweepKnown.starts_at = scheduled
            return
        starts_at = now + EMBED_SWEEP_DELAY_S
        if not cache.add(EMBED_SWEEP_FLAG, starts_at, timeout=EMBED_SWEEP_FLAG_TTL_S):
            return  # another process scheduled one since the read: it will read this commit
    except Exception:
        logger.exception("could not check the activity embedding sweep flag")
        return
    # Noted before enqueueing: a sweep that runs at once (Celery's eager mode) clears the note again.
    _SweepKnown.starts_at = starts_at
    try:
        task_enqueue(EMBED_PENDING_TASK, countdown=EMBED_SWEEP_DELAY_S)
    except Exception:
        logger.exception("could not schedule the activity embedding sweep")
        _SweepKnown.starts_at = 0.0
        try:
            cache.delete(EMBED_SWEEP_FLAG)  # let the next event try again
        except Exception:
            logger.exception("could not clear the activity embedding sweep flag")


def embedding_sweep_flag_read() -> Statement | None:
    """The flag's read for the last statement of a webhook event's transaction, when the cache is the
    PostgreSQL table (None with Redis: the event checks after its commit, a cheap round trip there).

    The claim took the sweep's lock shared (`EMBED_SWEEP_LOCK_KEY`) before this read's snapshot, so a
    flag read as set is cleared only after this transaction commits, by a sweep that then reads its
    rows: the event needs no check after its commit.
    """
    default_cache = caches["default"]
    if not isinstance(default_cache, PostgresCache):
        return None
    sql, params = default_cache.read_sql(EMBED_SWEEP_FLAG)
    return Statement(sql, params)


def embedding_sweep_flag_clear() -> None:
    """No sweep is scheduled any more (the shared flag, and this process's note of it): the next
    commit schedules one."""
    _SweepKnown.starts_at = 0.0
    with transaction.atomic():
        # Waits for the event transactions that may have read the flag as set (they hold the lock
        # shared until they commit): the sweep reads after this, so it sees their rows.
        embed_sweep_lock_take()
        cache.delete(EMBED_SWEEP_FLAG)


def activities_embed_pending(*, batch_size: int = 256) -> int:
    """The sweep: embed every activity that is missing its embedding."""
    # Cleared before reading: an event committing from now on schedules the next sweep, and every
    # event that found the flag set committed before this read, so nothing is left behind.
    embedding_sweep_flag_clear()
    return embeddings_backfill(activities_missing_embedding(), activity_text, batch_size=batch_size, check_updated=True)


# --- App events (the app owns food logs and activities) -------------------------------------------


def activity_apply_app_event(
    *,
    profile: CrmUserProfile,
    activity_type: str,
    operation: str,
    external_id: str,
    occurred_at: dt.datetime,
    columns: dict[str, Any],
    logged_date: dt.date | None,
    payload: dict[str, Any],
    presumed_new_id: int | None = None,
) -> AppliedEvent:
    """Apply one app activity event (create/update/delete) under the rules of
    `activities.app_event_rules` (the batch intake applies the same rules set-based).

    A new row is left to the caller as a deferred INSERT; a replaced row is saved now. A weigh-in is
    also the profile's current weight, unless staff verified that field. The caller holds the
    user's profile row lock and recomputes the goals on `goal_metrics`.

    `presumed_new_id` (a create only): the event is presumed to find nothing stored (the common
    case: a create's external id is new), so its context is not read and the new row takes this
    reserved id. The result's `presumption` is the read that must hold when the writes run; the
    caller runs it with them and, when it is false, rolls back and applies the event without
    presuming (one round trip less per event: docs/sync.md "Statement budget").
    """
    presumed = presumed_new_id is not None and operation == "create"
    if presumed:
        context = ActivityEventContext(new_id=presumed_new_id, existing=None, deleted_later=False)
    else:
        context = activity_event_context_get(
            user_id=profile.user_id, activity_type=activity_type, external_id=external_id, occurred_at=occurred_at
        )
    existing = context.existing
    stored_at = existing.source_updated_at if existing is not None else None
    if activity_event_is_stale(stored_at=stored_at, occurred_at=occurred_at):
        return activity_stale_applied(
            activity_type=activity_type, external_id=external_id, activity_id=existing.pk, stored_at=stored_at
        )
    if operation == "delete":
        return _activity_delete_from_app(existing=existing, external_id=external_id)
    if external_id and existing is None and context.deleted_later:
        return activity_deleted_later_applied(activity_type=activity_type, external_id=external_id)
    values = activity_values_from_app(
        occurred_at=occurred_at, logged_date=logged_date, payload=payload, columns=columns
    )
    old = {c: getattr(existing, c) for c in ACTIVITY_COLUMNS} if existing else {}
    applied = activity_success_applied(
        activity_type=activity_type,
        external_id=external_id,
        logged_date=values["logged_date"],
        created=existing is None,
        old=old,
        columns=columns,
    )
    if existing is None:
        activity = UserActivity(
            pk=context.new_id, user=profile, activity_type=activity_type, external_id=external_id, **values
        )
        applied.deferred_writes.append(activity_insert_statement(activity, presumed_new=presumed))
        if presumed:
            applied.presumption = activity_presumed_new_held(
                user_id=profile.user_id, activity_type=activity_type, external_id=external_id, occurred_at=occurred_at
            )
    else:
        activity = existing
        for name, value in values.items():
            setattr(activity, name, value)
        activity.save(update_fields=[*values, "updated_at"])
    applied.data["activityId"], applied.entity_id = activity.pk, str(activity.pk)
    if activity_type == ActivityType.WEIGHT_LOG:
        profile_changes, applied.conflicts, _ = profile_fields_apply_from_app(
            profile=profile, fields={"current_weight_kg": columns["weight_kg"]}, occurred_at=occurred_at
        )
        applied.changes.update({f"profile.{k}": v for k, v in profile_changes.items()})
    return applied


def _activity_delete_from_app(*, existing: UserActivity | None, external_id: str) -> AppliedEvent:
    """The app deleted an activity: remove it (a delete of an unknown activity changes nothing)."""
    if existing is None:
        return AppliedEvent(
            result_status="success", data={"activityId": None, "externalId": external_id, "deleted": False}
        )
    metrics = {c for c in ACTIVITY_COLUMNS if getattr(existing, c) is not None}
    activity_id = existing.pk
    changes = audit_changes({c: getattr(existing, c) for c in ACTIVITY_COLUMNS}, {})
    activity_delete(activity=existing)
    return AppliedEvent(
        result_status="success",
        data={"activityId": activity_id, "externalId": external_id, "deleted": True},
        changes={"deleted": {"old": activity_id, "new": None}, **changes},
        entity_id=str(activity_id),
        goal_metrics=metrics,
    )
