"""The webhook validates payloads with the owning app's rules: goal metric per type, activity value ranges."""

import pytest

from activities.models import ACTIVITY_VALUE_RANGES, UserActivity
from goals.models import GoalMetric, GoalType, HealthGoal
from sync.models import SyncEvent, SyncStatus
from tests.factories import GoalFactory, ProfileFactory

pytestmark = pytest.mark.django_db


def goal_event(operation: str, payload: dict, external_id: str = "g1") -> dict:
    return {
        "entityType": "goal",
        "operation": operation,
        "userId": "user_sync",
        "externalId": external_id,
        "payload": payload,
    }


def test_water_goal_on_protein_is_422_and_nothing_is_stored(post_event):
    payload = {"goal_type": "water", "goal_value": 2000, "goal_unit": "ml", "metric": "protein_g"}

    response = post_event(goal_event("create", payload))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == {"payload": {"metric": ["For water goals use one of: water_ml."]}}
    assert HealthGoal.objects.count() == 0
    assert SyncEvent.objects.get().status == SyncStatus.FAILED


def test_goal_update_to_a_type_its_metric_does_not_fit_is_422(post_event):
    post_event(goal_event("create", {"goal_type": "water", "goal_value": 2000, "goal_unit": "ml"}))

    response = post_event(goal_event("update", {"goal_type": "sleep", "metric": "water_ml"}))

    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"payload": {"metric": ["For sleep goals use one of: sleep_hours."]}}
    assert HealthGoal.objects.get().goal_type == GoalType.WATER


def test_goal_update_of_the_metric_alone_is_checked_against_the_stored_type(post_event):
    profile = ProfileFactory(user_id="user_sync")
    GoalFactory(user=profile, goal_type=GoalType.WATER, metric=GoalMetric.WATER_ML, goal_unit="ml", external_id="g1")

    response = post_event(goal_event("update", {"metric": "protein_g"}))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == {"payload": {"metric": ["For water goals use one of: water_ml."]}}
    assert HealthGoal.objects.get().metric == GoalMetric.WATER_ML
    assert SyncEvent.objects.filter(status=SyncStatus.FAILED).count() == 1


@pytest.mark.parametrize(
    ("goal_type", "goal_unit", "metric"),
    [
        ("nutrition", "g", "protein_g"),  # the unit does not decide: the app's default
        ("nutrition", "calories", "calories_kcal"),
        ("nutrition", "kcal", "calories_kcal"),
        ("activity", "steps", "steps"),
        ("activity", "km", "exercise_minutes"),
        ("sleep", "hours", "sleep_hours"),
    ],
)
def test_goal_metric_is_inferred_from_type_and_unit(post_event, goal_type, goal_unit, metric):
    payload = {"goal_type": goal_type, "goal_value": 10, "goal_unit": goal_unit}

    response = post_event(goal_event("create", payload))

    assert response.status_code == 202, response.json()
    assert HealthGoal.objects.get().metric == metric


ACTIVITY_FIELDS = [
    ("food_log", {"food_name": "Oats", "calories": 300}, "calories", "calories_kcal"),
    ("food_log", {"food_name": "Oats", "calories": 300}, "protein", "protein_g"),
    ("food_log", {"food_name": "Oats", "calories": 300}, "carbs", "carbs_g"),
    ("food_log", {"food_name": "Oats", "calories": 300}, "fat", "fat_g"),
    ("exercise", {"exercise_type": "run", "duration_minutes": 30}, "duration_minutes", "exercise_minutes"),
    ("exercise", {"exercise_type": "run", "duration_minutes": 30}, "calories_burned", "calories_burned_kcal"),
    ("exercise", {"exercise_type": "run", "duration_minutes": 30}, "steps", "steps"),
    ("weight_log", {}, "weight_kg", "weight_kg"),
    ("water_log", {}, "amount_ml", "water_ml"),
    ("sleep_log", {}, "hours", "sleep_hours"),
]


@pytest.mark.parametrize(("entity_type", "base", "field", "column"), ACTIVITY_FIELDS)
def test_activity_payload_ranges_are_the_column_ranges(post_event, entity_type, base, field, column):
    low, high = ACTIVITY_VALUE_RANGES[column]
    statuses = {}
    for n, value in enumerate((low - 1, low, high, high + 1)):
        body = {
            "entityType": entity_type,
            "operation": "create",
            "userId": "user_sync",
            "externalId": f"{entity_type}_{n}",
            "payload": {**base, field: value},
        }
        statuses[value] = post_event(body).status_code

    assert statuses == {low - 1: 422, low: 202, high: 202, high + 1: 422}
    assert sorted(getattr(row, column) for row in UserActivity.objects.all()) == [low, high]
