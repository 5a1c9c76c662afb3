"""Reads of the goals app."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from activities.selectors import NUTRIENTS, nutrition_summary_get
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


def goal_payload(goal: HealthGoal) -> dict:
    """A goal as the app and the coach see it (camelCase JSON): outbound events and coach tools."""
    return {
        "id": goal.pk,
        "externalId": goal.external_id,
        "goalType": goal.goal_type,
        "metric": goal.metric,
        "goalValue": float(goal.goal_value),
        "goalUnit": goal.goal_unit,
        "targetDate": goal.target_date.isoformat() if goal.target_date else None,
        "priority": goal.priority,
        "status": goal.status,
        "progressPct": float(goal.progress_pct),
        "streakDays": goal.streak_days,
        "source": goal.source,
    }


def goal_list_by_ids(*, goal_ids: list[int]) -> QuerySet[HealthGoal]:
    """The goals with these ids, oldest first (e.g. the goals the coach just suggested)."""
    return HealthGoal.objects.filter(pk__in=goal_ids).order_by("id")


@dataclass(frozen=True)
class NutrientGoalProgress:
    """An active nutrition goal and how far today and the 7-day average reach it (percent of target)."""

    goal_id: int
    target: float
    unit: str
    today_pct: float | None
    average_7d_pct: float | None


@dataclass(frozen=True)
class NutritionSnapshot:
    """Nutrient-keyed dicts have one key per `activities.selectors.NUTRIENTS`."""

    user_id: str
    date: dt.date
    days: int
    days_logged: int
    today: dict[str, float]
    averages_7d: dict[str, float | None]  # per logged day; None without food logs
    goals: dict[str, NutrientGoalProgress]  # only the nutrients with an active goal
    daily: list[dict]  # per logged day: {"date": "YYYY-MM-DD", <nutrient>: float, ...}


def nutrition_snapshot_get(*, user_id: str, today: dt.date | None = None) -> NutritionSnapshot:
    """Today and 7-day averages of calories and macros against the user's active nutrition goals."""
    today = today or timezone.localdate()
    summary = nutrition_summary_get(user_id=user_id, days=7, today=today)
    goals = goals_active_by_metric(user_id=user_id, metrics=list(NUTRIENTS))

    def pct(value: float | None, target: Decimal) -> float | None:
        return None if value is None else round(100 * value / float(target), 1)

    return NutritionSnapshot(
        user_id=user_id,
        date=today,
        days=summary.days,
        days_logged=summary.days_logged,
        today=summary.today,
        averages_7d=summary.averages,
        goals={
            metric: NutrientGoalProgress(
                goal_id=goal.pk,
                target=float(goal.goal_value),
                unit=goal.goal_unit,
                today_pct=pct(summary.today[metric], goal.goal_value),
                average_7d_pct=pct(summary.averages[metric], goal.goal_value),
            )
            for metric, goal in goals.items()
        },
        daily=summary.daily,
    )
