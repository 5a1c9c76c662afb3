"""The OpenAPI schema names every field of the computed responses (no bare `{}` / `{"type": "object"}`),
and the responses carry exactly the fields the schema names, with the JSON they always had."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from activities.selectors import NUTRIENTS
from tests.factories import FoodLogFactory, GoalFactory, days_ago
from tests.support import USER_A

pytestmark = pytest.mark.django_db
BASE_A = f"/api/crm/users/{USER_A}"

# (path, method, status) -> the named properties of the response (of `data` in the success envelope).
# The metrics endpoint's keys, in the order the client sees them.
METRICS_KEYS = [
    "userId",
    "activities7d",
    "activities30d",
    "activeDays14d",
    "currentStreakDays",
    "lastActiveAt",
    "engagementTier",
    "engagementTierSuggested",
    "churnRisk",
    "churnBand",
    "churnFactors",
    "churnRiskStored",
    "churnAssessedAt",
]

TYPED_RESPONSES = {
    ("/api/crm/users/{user_id}/nutrition-snapshot", "get", "200"): {
        "userId",
        "date",
        "days",
        "daysLogged",
        "today",
        "averages7d",
        "goals",
        "daily",
    },
    ("/api/crm/users/{user_id}/metrics", "get", "200"): set(METRICS_KEYS),
    ("/api/crm/users/{user_id}/ask", "post", "200"): {
        "status",
        "response",
        "toolsUsed",
        "sessionId",
        "conversationId",
        "provider",
        "fallbackReason",
        "suggestedGoals",
    },
    ("/api/crm/webhooks/app-event", "post", "202"): {"status", "idempotencyKey", "result"},
    ("/api/crm/users/{user_id}/export", "get", "200"): {"userId", "exportedAt", "tables"},
    ("/api/crm/retention/outcomes", "get", "200"): {"windowDays", "actionTypes"},
}


@pytest.fixture(scope="module")
def schema():
    # What /api/schema serves (the same generator), built once for the module.
    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _response_body(schema: dict, path: str, method: str, status: str) -> dict:
    body = _resolve(schema, schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"])
    if set(body.get("properties", {})) == {"status", "data"}:  # the success envelope
        body = _resolve(schema, body["properties"]["data"])
    return body


@pytest.mark.parametrize(("path", "method", "status"), list(TYPED_RESPONSES))
def test_computed_responses_name_their_fields(schema, path, method, status):
    body = _response_body(schema, path, method, status)
    assert body.get("type") == "object", body
    assert set(body["properties"]) == TYPED_RESPONSES[(path, method, status)]


def test_nested_shapes_are_named_too(schema):
    snapshot = _response_body(schema, "/api/crm/users/{user_id}/nutrition-snapshot", "get", "200")["properties"]
    assert set(_resolve(schema, snapshot["today"])["properties"]) == set(NUTRIENTS)
    assert set(_resolve(schema, snapshot["averages7d"])["properties"]) == set(NUTRIENTS)
    assert set(_resolve(schema, snapshot["daily"]["items"])["properties"]) == {"date", *NUTRIENTS}
    goal = _resolve(schema, snapshot["goals"]["additionalProperties"])
    assert set(goal["properties"]) == {"goalId", "target", "unit", "todayPct", "average7dPct"}

    metrics = _response_body(schema, "/api/crm/users/{user_id}/metrics", "get", "200")["properties"]
    factors = _resolve(schema, metrics["churnFactors"])["properties"]
    assert set(factors) == {
        "model",
        "modelVersion",
        "daysInactive",
        "typicalGapDays",
        "activities30d",
        "activeDays28d",
        "drivers",
    }
    driver = _resolve(schema, factors["drivers"]["items"])["properties"]
    assert set(driver) == {"feature", "label", "value", "contribution", "effect"}

    webhook = _response_body(schema, "/api/crm/webhooks/app-event", "post", "202")["properties"]
    result = _resolve(schema, webhook["result"])["properties"]
    assert set(result) == {"status", "data"}
    assert {"syncEventId", "conflicts"} <= set(_resolve(schema, result["data"])["properties"])


def test_nutrition_snapshot_json_is_what_the_schema_names(client_a, profile_a):
    today = timezone.localdate()
    FoodLogFactory(user=profile_a, occurred_at=timezone.now(), logged_date=today, calories_kcal=600, protein_g=60)
    yesterday = today - dt.timedelta(days=1)
    FoodLogFactory(user=profile_a, occurred_at=days_ago(1), logged_date=yesterday, calories_kcal=2000, protein_g=90)
    goal = GoalFactory(user=profile_a, metric="protein_g", goal_value=Decimal(120))

    data = client_a.get(f"{BASE_A}/nutrition-snapshot").json()["data"]

    assert list(data) == ["userId", "date", "days", "daysLogged", "today", "averages7d", "goals", "daily"]
    assert data["userId"] == USER_A
    assert data["date"] == today.isoformat()
    assert data["days"] == 7
    assert list(data["today"]) == list(NUTRIENTS)
    assert data["goals"] == {
        "protein_g": {"goalId": goal.pk, "target": 120.0, "unit": "g", "todayPct": 50.0, "average7dPct": 62.5}
    }
    assert [day["date"] for day in data["daily"]] == [yesterday.isoformat(), today.isoformat()]
    assert list(data["daily"][0]) == ["date", *NUTRIENTS]


def test_metrics_json_keeps_its_number_and_time_formats(client_a, profile_a):
    data = client_a.get(f"{BASE_A}/metrics").json()["data"]
    # Never active: the whole history window without a log.
    assert data["churnFactors"]["daysInactive"] == 120
    assert data["lastActiveAt"] is None

    FoodLogFactory(user=profile_a, occurred_at=days_ago(1), logged_date=timezone.localdate(days_ago(1)))
    data = client_a.get(f"{BASE_A}/metrics").json()["data"]
    assert list(data) == METRICS_KEYS
    assert data["lastActiveAt"].endswith("+00:00")  # datetime.isoformat(), not DRF's "Z"
    assert dt.datetime.fromisoformat(data["lastActiveAt"]) <= timezone.now()
    assert data["churnFactors"]["daysInactive"] == 1
