"""Reads of the goals app."""

from __future__ import annotations

from django.db.models import QuerySet

from goals.models import GoalStatus, HealthGoal

GOAL_STATUS_ALL = "all"


def goal_list(*, user_id: str, status: str = GoalStatus.ACTIVE) -> QuerySet[HealthGoal]:
    """A user's goals in one status (or every status with "all"), newest first."""
    goals = HealthGoal.objects.filter(user_id=user_id)
    if status != GOAL_STATUS_ALL:
        goals = goals.filter(status=status)
    return goals.order_by("-created_at", "-id")


def goals_active_by_metric(*, user_id: str, metrics: list[str]) -> dict[str, HealthGoal]:
    """The newest active goal per metric among `metrics` (one query)."""
    found: dict[str, HealthGoal] = {}
    for goal in HealthGoal.objects.filter(user_id=user_id, status=GoalStatus.ACTIVE, metric__in=metrics).order_by(
        "-created_at", "-id"
    ):
        found.setdefault(goal.metric, goal)
    return found
