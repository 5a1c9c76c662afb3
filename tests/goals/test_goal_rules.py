"""A goal's metric must fit its type: refused by REST and by the database itself; goal target ranges."""

import pytest
from django.db import IntegrityError, transaction

from activities.models import ACTIVITY_VALUE_RANGES
from compliance.models import AuditLog
from goals.models import GOAL_TYPE_METRICS, GoalMetric, GoalType, HealthGoal
from goals.rules import GOAL_TARGET_RANGES, goal_metric_fits
from tests.factories import GoalFactory

pytestmark = pytest.mark.django_db


def test_rest_water_goal_on_protein_is_400_with_the_metrics_that_fit(service_client, profile_a):
    body = {"goal_type": "water", "goal_value": 2000, "goal_unit": "ml", "metric": "protein_g"}

    response = service_client.post(f"/api/crm/users/{profile_a.user_id}/goals", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "validation_error",
        "message": "The metric does not fit the goal type.",
        "details": {"metric": ["For water goals use one of: water_ml."]},
    }
    assert HealthGoal.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_database_refuses_a_metric_that_does_not_fit_the_goal_type(profile_a):
    with pytest.raises(IntegrityError, match="crm_goal_metric_fits_type"), transaction.atomic():
        HealthGoal.objects.create(
            user=profile_a, goal_type=GoalType.WATER, metric=GoalMetric.PROTEIN_G, goal_value=2000, goal_unit="ml"
        )

    assert HealthGoal.objects.count() == 0


@pytest.mark.parametrize(("goal_type", "metric"), [(t, m) for t, metrics in GOAL_TYPE_METRICS.items() for m in metrics])
def test_database_accepts_every_metric_its_type_measures(profile_a, goal_type, metric):
    GoalFactory(user=profile_a, goal_type=goal_type, metric=metric)

    assert goal_metric_fits(goal_type=goal_type, metric=metric)
    assert HealthGoal.objects.count() == 1


def test_every_metric_has_a_goal_type_and_a_target_range_inside_its_activity_range():
    assert {m for metrics in GOAL_TYPE_METRICS.values() for m in metrics} == set(GoalMetric.values)
    assert set(GOAL_TARGET_RANGES) == set(GoalMetric.values)
    for metric, (low, high) in GOAL_TARGET_RANGES.items():
        column_low, column_high = ACTIVITY_VALUE_RANGES[metric]  # goal metrics are named after the columns
        assert column_low <= low < high <= column_high, metric
