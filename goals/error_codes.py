"""Error codes of the goals app (the `error.code` of the one error shape)."""


class GoalErrorCode:
    INVALID_STATUS_TRANSITION = "invalid_status_transition"
    METRIC_REQUIRED = "metric_required"
