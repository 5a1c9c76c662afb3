"""Writes of the goals app."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework import status as http_status

from activities.models import ActivityType, UserActivity
from activities.selectors import daily_totals_for_users, daily_totals_get
from compliance.services import audit_changes, audit_record
from goals.error_codes import GoalErrorCode
from goals.models import GoalMetric, GoalSource, GoalStatus, HealthGoal
from goals.rules import goal_metric_fits, goal_metric_mismatch_message, goal_metric_resolve
from goals.selectors import goal_payload
from profiles.models import CrmUserProfile
from sync.app_events import AppliedEvent, stale_conflict
from sync.models import SyncEvent
from sync.outbox import outbox_record
from yahealthy_crm.actors import ActorType
from yahealthy_crm.errors import ApplicationError, ErrorCode

# suggested -> active is how a user accepts a suggestion; suggested -> abandoned declines it.
STATUS_TRANSITIONS: dict[str, set[str]] = {
    GoalStatus.SUGGESTED: {GoalStatus.ACTIVE, GoalStatus.ABANDONED},
    GoalStatus.ACTIVE: {GoalStatus.COMPLETED, GoalStatus.ABANDONED},
    GoalStatus.ABANDONED: {GoalStatus.ACTIVE},
    GoalStatus.COMPLETED: set(),
}
_GOAL_SOURCES = {
    ActorType.USER: GoalSource.USER,
    ActorType.APP: GoalSource.APP,
    ActorType.STAFF: GoalSource.STAFF,
    ActorType.AI_ASSISTANT: GoalSource.AI_ASSISTANT,
    ActorType.SYSTEM: GoalSource.SYSTEM,
}
_AUDITED_FIELDS = (
    "goal_type",
    "metric",
    "goal_value",
    "goal_unit",
    "start_value",
    "target_date",
    "priority",
    "status",
    "progress_pct",
    "source",
    "rationale",
    "accepted_at",
    "completed_at",
)


def _snapshot(goal: HealthGoal) -> dict[str, Any]:
    return {name: getattr(goal, name) for name in _AUDITED_FIELDS}


def goal_create(
    *,
    user_id: str,
    goal_type: str,
    goal_value: Decimal,
    goal_unit: str,
    actor_type: str,
    actor_id: str,
    metric: str | None = None,
    target_date: dt.date | None = None,
    priority: str | None = None,
    status: str = GoalStatus.ACTIVE,
    start_value: Decimal | None = None,
    rationale: str = "",
) -> HealthGoal:
    """Create a goal for an existing user (404 otherwise), audited. `suggested` goals await acceptance."""
    if not CrmUserProfile.objects.filter(user_id=user_id).exists():
        raise ApplicationError("User not found.", code=ErrorCode.NOT_FOUND, status_code=404)
    now = timezone.now()
    goal = HealthGoal(
        user_id=user_id,
        goal_type=goal_type,
        metric=goal_metric_resolve(goal_type=goal_type, goal_unit=goal_unit, metric=metric),
        goal_value=goal_value,
        goal_unit=goal_unit,
        start_value=start_value,
        target_date=target_date,
        status=status,
        source=_GOAL_SOURCES.get(actor_type, GoalSource.SYSTEM),
        rationale=rationale,
        accepted_at=now if status == GoalStatus.ACTIVE else None,
    )
    if priority:
        goal.priority = priority
    with transaction.atomic():
        goal.save(force_insert=True)
        audit_record(
            actor_type=actor_type,
            actor_id=actor_id,
            action="goal.suggested" if status == GoalStatus.SUGGESTED else "goal.created",
            entity_type="goal",
            entity_id=goal.pk,
            user_id=user_id,
            changes=audit_changes({}, _snapshot(goal)),
        )
        goal_outbox_record(goal=goal, operation="create", origin=actor_type)
    return goal


def goal_outbox_record(*, goal: HealthGoal, operation: str, origin: str) -> SyncEvent | None:
    """A goal created/accepted/updated in the CRM (staff, coach, user) that the app must show."""
    return outbox_record(
        user_id=goal.user_id,
        entity_type="goal",
        operation=operation,
        entity_id=goal.pk,
        origin=origin,
        data={"goal": goal_payload(goal)},
    )


def goal_update(
    *, goal_id: int, actor_type: str, actor_id: str, fields: dict[str, Any], user_id: str | None = None
) -> HealthGoal:
    """Update progress, status, value, date or priority of a goal, audited.

    `user_id` scopes the lookup (an end user's own goals: any other goal is a 404). Status changes
    follow STATUS_TRANSITIONS (409 otherwise); accepting a suggestion stamps `accepted_at`,
    completing stamps `completed_at` and sets progress to 100.
    """
    now = timezone.now()
    with transaction.atomic():
        goals = HealthGoal.objects.select_for_update()
        if user_id is not None:
            goals = goals.filter(user_id=user_id)
        goal = goals.filter(pk=goal_id).first()
        if goal is None:
            raise ApplicationError("Goal not found.", code=ErrorCode.NOT_FOUND, status_code=404)
        before = _snapshot(goal)
        new_status = fields.get("status", goal.status)
        if new_status != goal.status and new_status not in STATUS_TRANSITIONS[goal.status]:
            raise ApplicationError(
                f"A {goal.status} goal cannot become {new_status}.",
                code=GoalErrorCode.INVALID_STATUS_TRANSITION,
                status_code=http_status.HTTP_409_CONFLICT,
                details={
                    "status": [f"Allowed from {goal.status}: {sorted(STATUS_TRANSITIONS[goal.status]) or 'none'}."]
                },
            )
        action = "goal.updated"
        if new_status != goal.status:
            if goal.status == GoalStatus.SUGGESTED and new_status == GoalStatus.ACTIVE:
                goal.accepted_at = now
                action = "goal.accepted"
            elif new_status == GoalStatus.COMPLETED:
                goal.completed_at = now
                goal.progress_pct = Decimal(100)
                action = "goal.completed"
            elif new_status == GoalStatus.ABANDONED:
                action = "goal.declined" if goal.status == GoalStatus.SUGGESTED else "goal.abandoned"
        for name in ("progress_pct", "status", "goal_value", "target_date", "priority"):
            if name in fields:
                setattr(goal, name, fields[name])
        changes = audit_changes(before, _snapshot(goal))
        if not changes:
            return goal
        goal.save()
        audit_record(
            actor_type=actor_type,
            actor_id=actor_id,
            action=action,
            entity_type="goal",
            entity_id=goal.pk,
            user_id=goal.user_id,
            changes=changes,
        )
        goal_outbox_record(goal=goal, operation="accept" if action == "goal.accepted" else "update", origin=actor_type)
    return goal


# --- App events and progress from activity data (sync engine) ---------------------------------------


STREAK_LOOKBACK_DAYS = 120
# Goal metrics are named after the activity columns that measure them.
GOAL_METRICS = frozenset(GoalMetric.values)
# Calories are a target to hit, not a minimum: a day counts when within 10% of it.
CALORIE_TOLERANCE = Decimal("0.10")
GOAL_APP_FIELDS = (
    "goal_type",
    "metric",
    "goal_value",
    "goal_unit",
    "start_value",
    "target_date",
    "priority",
    "status",
    "progress_pct",
    "streak_days",
)


class GoalNotFoundError(Exception):
    pass


class GoalMetricMismatchError(Exception):
    """An app update whose metric does not fit the stored goal's type (its payload alone could not tell)."""


def _goal_values(data: dict) -> dict:
    values = {name: data[name] for name in GOAL_APP_FIELDS if name in data}
    for name in ("goal_value", "start_value", "progress_pct"):
        if values.get(name) is not None:
            values[name] = Decimal(str(round(float(values[name]), 2)))
    return values


def _goal_app_event_store(
    *, user, operation: str, external_id: str, data: dict, occurred_at: dt.datetime
) -> tuple[HealthGoal | None, str, dict]:
    """Apply an app goal event; returns (goal, outcome, audit changes), outcome in applied/stale/deleted.

    The app owns the goals it created (`external_id`); an event older than the goal's last applied
    event is stale. Raises GoalNotFoundError for an update/progress of a goal the CRM does not have,
    GoalMetricMismatchError for an update leaving the goal with a metric its type cannot measure.
    The caller holds the user's profile row lock.
    """
    goal = HealthGoal.objects.filter(user=user, external_id=external_id).first()
    if goal is not None and goal.source_updated_at and occurred_at < goal.source_updated_at:
        return goal, "stale", {}
    if operation == "delete":
        if goal is None:
            return None, "deleted", {}
        changes = {"deleted": {"old": goal.pk, "new": None}}
        goal.delete()
        return None, "deleted", changes
    values = _goal_values(data)
    if goal is None:
        if operation != "create":
            raise GoalNotFoundError(external_id)
        goal = HealthGoal.objects.create(
            user=user,
            external_id=external_id,
            source=GoalSource.APP,
            source_updated_at=occurred_at,
            accepted_at=occurred_at,
            **values,
        )
        return goal, "applied", audit_changes({}, values)
    goal_type = values.get("goal_type", goal.goal_type)
    if not goal_metric_fits(goal_type=goal_type, metric=values.get("metric", goal.metric)):
        raise GoalMetricMismatchError(goal_metric_mismatch_message(goal_type=goal_type))
    old = {name: getattr(goal, name) for name in values}
    for name, value in values.items():
        setattr(goal, name, value)
    if values.get("status") == GoalStatus.COMPLETED and goal.completed_at is None:
        goal.completed_at = occurred_at
    goal.source_updated_at = occurred_at
    goal.save()
    return goal, "applied", audit_changes(old, values)


def _metric_met(metric: str, total: Decimal | float | None, goal_value: Decimal) -> bool:
    if not total:
        return False
    total = Decimal(str(total))
    if metric == GoalMetric.CALORIES_KCAL:
        return abs(total - goal_value) <= goal_value * CALORIE_TOLERANCE
    return total >= goal_value


def _streak(met_days: set[dt.date], today: dt.date) -> tuple[int, dt.date | None]:
    """Consecutive met days ending today, or yesterday while today is still in progress."""
    day = today if today in met_days else today - dt.timedelta(days=1)
    last = day if day in met_days else None
    streak = 0
    while day in met_days:
        streak += 1
        day -= dt.timedelta(days=1)
    return streak, last


def _weight_progress(goal: HealthGoal, logs: list[tuple[dt.datetime, Decimal]]) -> Decimal | None:
    if not logs:
        return None
    current = logs[-1][1]
    if goal.start_value is None:
        before = [weight for when, weight in logs if when <= goal.created_at]
        goal.start_value = before[-1] if before else logs[0][1]
    start, target = Decimal(goal.start_value), Decimal(goal.goal_value)
    if start == target:
        return Decimal(100) if current == target else Decimal(0)
    fraction = (start - current) / (start - target)
    return min(max(fraction * 100, Decimal(0)), Decimal(100)).quantize(Decimal("0.01"))


def _goal_progress_apply(
    goal: HealthGoal,
    *,
    totals: dict[dt.date, dict],
    weight_logs: list[tuple[dt.datetime, Decimal]],
    today: dt.date,
) -> tuple[bool, dict]:
    """The one home of the progress and streak rule: set `goal`'s progress and streak from its user's
    daily totals (daily goals) or weigh-ins (weight goals). Returns (changed, summary); not saved.

    Weight goals: progress from the start weight towards the target, streak = consecutive days with
    a weigh-in. Daily goals (nutrition, water, sleep, activity): progress = the latest logged day's
    total against the target (capped at 100), streak = consecutive days the target was met, ending
    today or yesterday (so a user who stopped logging has a broken streak: 0).
    """
    start_before = goal.start_value
    if goal.metric == GoalMetric.WEIGHT_KG:
        progress = _weight_progress(goal, weight_logs)
        met_days = {timezone.localdate(when) for when, _ in weight_logs}
    else:
        days_with_data = sorted(day for day, row in totals.items() if row.get(goal.metric))
        latest = totals[days_with_data[-1]][goal.metric] if days_with_data else None
        progress = (
            min(Decimal(str(latest)) / goal.goal_value * 100, Decimal(100)).quantize(Decimal("0.01"))
            if latest
            else Decimal(0)
        )
        met_days = {
            day for day, row in totals.items() if _metric_met(goal.metric, row.get(goal.metric), goal.goal_value)
        }
    streak, last = _streak(met_days, today)
    if progress is None:
        progress = goal.progress_pct
    new = {"progress_pct": progress, "streak_days": streak, "streak_last_date": last}
    changed = {name: getattr(goal, name) for name in new} != new or goal.start_value != start_before
    for name, value in new.items():
        setattr(goal, name, value)
    summary = {"goalId": goal.pk, "metric": goal.metric, "progressPct": float(progress), "streakDays": streak}
    return changed, summary


_PROGRESS_FIELDS = ["progress_pct", "streak_days", "streak_last_date", "start_value", "updated_at"]


def goal_progress_update_for_activity(*, user_id: str, metrics: set[str], today: dt.date | None = None) -> list[dict]:
    """Recompute progress and streaks of the user's active goals on `metrics` from activity data
    (rule: `_goal_progress_apply`). Recomputed from the data, so replays, updates and deletes all
    converge to the same numbers.
    """
    metrics = metrics & GOAL_METRICS
    if not metrics:
        return []
    # The sync engine calls this only when the user has active goals on these metrics.
    goals = list(HealthGoal.objects.filter(user_id=user_id, status=GoalStatus.ACTIVE, metric__in=metrics))
    if not goals:
        return []
    today = today or timezone.localdate()
    start = today - dt.timedelta(days=STREAK_LOOKBACK_DAYS)
    daily_metrics = {goal.metric for goal in goals} - {GoalMetric.WEIGHT_KG}
    totals = daily_totals_get(user_id=user_id, start=start, end=today) if daily_metrics else {}
    weight_logs: list[tuple[dt.datetime, Decimal]] = []
    if GoalMetric.WEIGHT_KG in metrics:
        weight_logs = list(
            UserActivity.objects.filter(user_id=user_id, activity_type=ActivityType.WEIGHT_LOG, weight_kg__isnull=False)
            .order_by("occurred_at", "id")
            .values_list("occurred_at", "weight_kg")
        )
    updated = []
    for goal in goals:
        changed, summary = _goal_progress_apply(goal, totals=totals, weight_logs=weight_logs, today=today)
        if changed:
            goal.save(update_fields=_PROGRESS_FIELDS)
        updated.append(summary)
    return updated


def goals_progress_refresh_for_users(*, user_ids: list[str], today: dt.date | None = None) -> int:
    """Recompute progress and streaks of every active goal of `user_ids` (the daily refresh), with the
    same rule as `goal_progress_update_for_activity`, set-based: four queries whatever the number of
    users (goals, daily totals, weigh-ins, one bulk UPDATE). Returns how many goals changed.
    """
    goals = list(HealthGoal.objects.filter(user_id__in=user_ids, status=GoalStatus.ACTIVE).order_by("id"))
    if not goals:
        return 0
    today = today or timezone.localdate()
    start = today - dt.timedelta(days=STREAK_LOOKBACK_DAYS)
    daily_users = sorted({g.user_id for g in goals if g.metric != GoalMetric.WEIGHT_KG})
    weight_users = sorted({g.user_id for g in goals if g.metric == GoalMetric.WEIGHT_KG})
    totals = daily_totals_for_users(user_ids=daily_users, start=start, end=today) if daily_users else {}
    weight_logs: dict[str, list[tuple[dt.datetime, Decimal]]] = {}
    if weight_users:
        rows = (
            UserActivity.objects.filter(
                user_id__in=weight_users, activity_type=ActivityType.WEIGHT_LOG, weight_kg__isnull=False
            )
            .order_by("user_id", "occurred_at", "id")
            .values_list("user_id", "occurred_at", "weight_kg")
        )
        for user_id, occurred_at, weight in rows:
            weight_logs.setdefault(user_id, []).append((occurred_at, weight))
    changed_goals = []
    for goal in goals:
        changed, _ = _goal_progress_apply(
            goal, totals=totals.get(goal.user_id, {}), weight_logs=weight_logs.get(goal.user_id, []), today=today
        )
        if changed:
            goal.updated_at = timezone.now()
            changed_goals.append(goal)
    if changed_goals:
        HealthGoal.objects.bulk_update(changed_goals, _PROGRESS_FIELDS)
    return len(changed_goals)


def goal_apply_app_event(
    *, user, operation: str, external_id: str, data: dict, occurred_at: dt.datetime
) -> AppliedEvent:
    """Apply an app's goal event (create/update/progress/delete) and describe the outcome for the app."""
    goal, outcome, changes = _goal_app_event_store(
        user=user, operation=operation, external_id=external_id, data=data, occurred_at=occurred_at
    )
    if outcome == "stale":
        return AppliedEvent(
            result_status="stale",
            data={"goalId": goal.pk, "externalId": external_id},
            conflicts=[stale_conflict(entity_type="goal", external_id=external_id, stored_at=goal.source_updated_at)],
            entity_id=str(goal.pk),
        )
    result: dict = {"externalId": external_id}
    if goal is None:
        result.update({"goalId": changes.get("deleted", {}).get("old"), "deleted": bool(changes)})
    else:
        result.update(
            {
                "goalId": goal.pk,
                "goalType": goal.goal_type,
                "metric": goal.metric,
                "status": goal.status,
                "progressPct": float(goal.progress_pct),
                "streakDays": goal.streak_days,
            }
        )
    return AppliedEvent(result_status="success", data=result, changes=changes, entity_id=str(result["goalId"] or ""))
