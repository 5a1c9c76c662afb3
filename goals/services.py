"""Writes of the goals app."""

# --- App events and progress from activity data (sync engine) ---------------------------------------
# Imports are kept with this block so the REST API's functions above can grow their own freely.
import datetime as dt  # noqa: E402, RUF100
from decimal import Decimal  # noqa: E402, RUF100

from django.utils import timezone  # noqa: E402, RUF100

from activities.models import ActivityType, UserActivity  # noqa: E402, RUF100
from activities.selectors import daily_totals_get  # noqa: E402, RUF100
from compliance.services import audit_changes  # noqa: E402, RUF100
from goals.models import GoalMetric, GoalSource, GoalStatus, HealthGoal  # noqa: E402, RUF100

STREAK_LOOKBACK_DAYS = 120
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


def _goal_values(data: dict) -> dict:
    values = {name: data[name] for name in GOAL_APP_FIELDS if name in data}
    for name in ("goal_value", "start_value", "progress_pct"):
        if values.get(name) is not None:
            values[name] = Decimal(str(round(float(values[name]), 2)))
    return values


def goal_apply_app_event(
    *, user, operation: str, external_id: str, data: dict, occurred_at: dt.datetime
) -> tuple[HealthGoal | None, str, dict]:
    """Apply an app goal event; returns (goal, outcome, audit changes), outcome in applied/stale/deleted.

    The app owns the goals it created (`external_id`); an event older than the goal's last applied
    event is stale. Raises GoalNotFoundError for an update/progress of a goal the CRM does not have.
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


def goal_progress_update_for_activity(
    *, user_id: str, metrics: set[str], today: dt.date | None = None
) -> list[dict]:
    """Recompute progress and streaks of the user's active goals on `metrics` from activity data.

    Weight goals: progress from the start weight towards the target, streak = consecutive days with
    a weigh-in. Daily goals (nutrition, water, sleep, activity): progress = the latest logged day's
    total against the target (capped at 100), streak = consecutive days the target was met.
    Recomputed from the data, so replays, updates and deletes all converge to the same numbers.
    """
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
            UserActivity.objects.filter(
                user_id=user_id, activity_type=ActivityType.WEIGHT_LOG, weight_kg__isnull=False
            )
            .order_by("occurred_at", "id")
            .values_list("occurred_at", "weight_kg")
        )
    updated = []
    for goal in goals:
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
                day
                for day, row in totals.items()
                if _metric_met(goal.metric, row.get(goal.metric), goal.goal_value)
            }
        streak, last = _streak(met_days, today)
        if progress is None:
            progress = goal.progress_pct
        new = {"progress_pct": progress, "streak_days": streak, "streak_last_date": last}
        old = {name: getattr(goal, name) for name in new}
        if old != new or goal.start_value != start_before:
            for name, value in new.items():
                setattr(goal, name, value)
            goal.save(update_fields=[*new, "start_value", "updated_at"])
        updated.append(
            {"goalId": goal.pk, "metric": goal.metric, "progressPct": float(progress), "streakDays": streak}
        )
    return updated
