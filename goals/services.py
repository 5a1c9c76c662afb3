"""Writes of the goals app."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework import status as http_status

from compliance.models import ActorType
from compliance.services import audit_changes, audit_record
from goals.models import GoalMetric, GoalSource, GoalStatus, GoalType, HealthGoal
from profiles.models import CrmUserProfile
from yahealthy_crm.errors import ApplicationError, ErrorCode


class GoalErrorCode:
    INVALID_STATUS_TRANSITION = "invalid_status_transition"
    METRIC_REQUIRED = "metric_required"


# What each goal type can measure, with the unit the CRM expects for it.
GOAL_TYPE_METRICS: dict[str, dict[str, str]] = {
    GoalType.WEIGHT: {GoalMetric.WEIGHT_KG: "kg"},
    GoalType.NUTRITION: {
        GoalMetric.CALORIES_KCAL: "kcal",
        GoalMetric.PROTEIN_G: "g",
        GoalMetric.CARBS_G: "g",
        GoalMetric.FAT_G: "g",
    },
    GoalType.ACTIVITY: {GoalMetric.EXERCISE_MINUTES: "min", GoalMetric.STEPS: "steps"},
    GoalType.WATER: {GoalMetric.WATER_ML: "ml"},
    GoalType.SLEEP: {GoalMetric.SLEEP_HOURS: "h"},
}
_UNIT_ALIASES = {"minutes": "min", "mins": "min", "hours": "h", "hrs": "h", "step": "steps", "cal": "kcal"}

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


def goal_metric_resolve(*, goal_type: str, goal_unit: str, metric: str | None = None) -> str:
    """The metric a goal measures: the given one (checked against the type) or the one its unit implies."""
    metrics = GOAL_TYPE_METRICS[goal_type]
    if metric:
        if metric not in metrics:
            raise ApplicationError(
                "The metric does not fit the goal type.",
                details={"metric": [f"For {goal_type} goals use one of: {', '.join(sorted(metrics))}."]},
            )
        return metric
    unit = goal_unit.strip().lower()
    unit = _UNIT_ALIASES.get(unit, unit)
    candidates = [name for name, expected in metrics.items() if expected == unit]
    if len(candidates) == 1:
        return candidates[0]
    if len(metrics) == 1:
        return next(iter(metrics))
    raise ApplicationError(
        "Say which metric this goal measures.",
        code=GoalErrorCode.METRIC_REQUIRED,
        details={
            "metric": [f"Required for {goal_type} goals in '{goal_unit}': {', '.join(sorted(metrics))}."]
        },
    )


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
    return goal


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
                    "status": [
                        f"Allowed from {goal.status}: {sorted(STATUS_TRANSITIONS[goal.status]) or 'none'}."
                    ]
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
    return goal
