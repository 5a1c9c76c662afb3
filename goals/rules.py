"""The goal rules every entry point shares (REST, the app's webhook, the coach's tools, admin).

Which metric fits which goal type is the table `goals.models.GOAL_TYPE_METRICS` (also a CHECK
constraint); this module reads it. Pure functions, except `goal_metric_resolve`, which raises the
one application error so each caller shows it in its own way.
"""

from __future__ import annotations

from goals.error_codes import GoalErrorCode
from goals.models import GOAL_TYPE_METRICS, GoalMetric, GoalType
from yahealthy_crm.errors import ApplicationError

GOAL_UNIT_ALIASES = {
    "minutes": "min",
    "mins": "min",
    "hours": "h",
    "hrs": "h",
    "step": "steps",
    "cal": "kcal",
    "calories": "kcal",
}
# The metric an app goal gets when neither `metric` nor its unit decides (docs/sync.md: the metric
# is inferred from type and unit). REST and the coach ask instead (`metric_required`).
APP_DEFAULT_METRICS: dict[str, str] = {
    GoalType.NUTRITION: GoalMetric.PROTEIN_G,
    GoalType.ACTIVITY: GoalMetric.EXERCISE_MINUTES,
}
# Sensible targets for a goal the coach suggests, per metric: the model cannot store a 5000 g protein
# goal. Deliberately narrower than what one activity log may hold (activities.models
# ACTIVITY_VALUE_RANGES, e.g. protein 0-2000 g per log): a different rule, so a separate table.
GOAL_TARGET_RANGES: dict[str, tuple[float, float]] = {
    GoalMetric.PROTEIN_G: (20, 400),
    GoalMetric.CALORIES_KCAL: (1000, 6000),
    GoalMetric.CARBS_G: (20, 800),
    GoalMetric.FAT_G: (15, 300),
    GoalMetric.WATER_ML: (500, 6000),
    GoalMetric.SLEEP_HOURS: (5, 11),
    GoalMetric.EXERCISE_MINUTES: (5, 300),
    GoalMetric.STEPS: (1000, 40000),
    GoalMetric.WEIGHT_KG: (30, 300),
}


def goal_metric_fits(*, goal_type: str, metric: str) -> bool:
    """Whether a goal of `goal_type` can measure `metric` (the rule of the crm_goal_metric_fits_type check)."""
    return metric in GOAL_TYPE_METRICS.get(goal_type, {})


def goal_metric_mismatch_message(*, goal_type: str) -> str:
    """What to tell a caller whose metric does not fit the goal type: the metrics that do."""
    return f"For {goal_type} goals use one of: {', '.join(sorted(GOAL_TYPE_METRICS[goal_type]))}."


def goal_units_deciding_metric(*, goal_type: str) -> list[str]:
    """The units (as sent, any case, aliases included) from which `goal_metric_resolve` infers the
    metric of a `goal_type` with several metrics; the OpenAPI schema of goal creation states them."""
    units = list(GOAL_TYPE_METRICS[goal_type].values())
    deciding = {unit for unit in units if units.count(unit) == 1}
    return sorted(deciding | {alias for alias, unit in GOAL_UNIT_ALIASES.items() if unit in deciding})


def goal_metric_resolve(*, goal_type: str, goal_unit: str, metric: str | None = None, app_default: bool = False) -> str:
    """The metric a goal measures: the given one (checked against the type) or the one its unit implies.

    When the unit does not decide, `app_default` picks APP_DEFAULT_METRICS (the app's webhook);
    otherwise the caller must say (`metric_required`). A metric that does not fit is a
    `validation_error` with the metrics that do on `metric`.
    """
    metrics = GOAL_TYPE_METRICS[goal_type]
    if metric:
        if not goal_metric_fits(goal_type=goal_type, metric=metric):
            raise ApplicationError(
                "The metric does not fit the goal type.",
                details={"metric": [goal_metric_mismatch_message(goal_type=goal_type)]},
            )
        return metric
    unit = goal_unit.strip().lower()
    unit = GOAL_UNIT_ALIASES.get(unit, unit)
    candidates = [name for name, expected in metrics.items() if expected == unit]
    if len(candidates) == 1:
        return candidates[0]
    if len(metrics) == 1:
        return next(iter(metrics))
    if app_default:
        return APP_DEFAULT_METRICS[goal_type]
    raise ApplicationError(
        "Say which metric this goal measures.",
        code=GoalErrorCode.METRIC_REQUIRED,
        details={"metric": [f"Required for {goal_type} goals in '{goal_unit}': {', '.join(sorted(metrics))}."]},
    )
