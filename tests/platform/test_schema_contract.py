"""The schema's promises that every operation shares (yahealthy_crm/openapi.py), checked on the
schema itself; tests/platform/test_schema_fuzz.py checks that the server keeps them."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS and path.startswith("/api/crm/"):
                yield path, method, operation


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_request_bodies_are_json_only(schema):
    for path, method, operation in _operations(schema):
        if "requestBody" in operation:
            assert set(operation["requestBody"]["content"]) == {"application/json"}, (path, method)
            assert {"413", "415"} <= set(operation["responses"]), (path, method)


def test_every_error_answer_has_the_error_body(schema):
    for path, method, operation in _operations(schema):
        statuses = set(operation["responses"])
        assert {"406", "503"} <= statuses, (path, method)
        if operation.get("security"):
            assert "401" in statuses, (path, method)
        if "{" in path:
            assert "404" in statuses, (path, method)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"}, (path, method, status)
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["status", "error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "details"]


def test_rest_bodies_refuse_unknown_fields_and_webhook_payloads_keep_them(schema):
    for path, method, operation in _operations(schema):
        if "requestBody" not in operation:
            continue
        body = _resolve(schema, operation["requestBody"]["content"]["application/json"]["schema"])
        if path.startswith("/api/crm/webhooks/"):
            continue
        branches = body.get("anyOf") or [body]
        for branch in branches:
            assert branch["additionalProperties"] is False, (path, method)
    event = _resolve(schema, {"$ref": "#/components/schemas/AppEvent"})
    food_log = _resolve(schema, next(v for v in event["oneOf"] if v["$ref"].endswith("/AppEventFoodLogCreate")))
    payload = _resolve(schema, food_log["properties"]["payload"]["allOf"][0])
    assert "additionalProperties" not in payload  # unknown payload keys are kept (docs/sync.md)


def test_numbers_and_strings_have_their_bounds(schema):
    profile = schema["components"]["schemas"]["ProfileCreateInput"]["properties"]
    assert (profile["age"]["minimum"], profile["age"]["maximum"]) == (13, 120)
    assert profile["height_cm"] == {"type": "number", "nullable": True, "minimum": 50.0, "maximum": 280.0}
    assert profile["user_id"]["pattern"] == "^[A-Za-z0-9_.:@-]{1,64}$"
    ask = schema["components"]["schemas"]["AskInput"]["properties"]["message"]
    assert ask["maxLength"] == 2000
    assert ask["pattern"] == r"^[^\x00]*[^\s\x00][^\x00]*$"  # no NUL, not blank after trimming
    churn_risk = {p["name"]: p["schema"] for p in schema["paths"]["/api/crm/churn-risk"]["get"]["parameters"]}
    assert (churn_risk["limit"]["minimum"], churn_risk["limit"]["maximum"]) == (1, 100)
    assert (churn_risk["min_risk"]["minimum"], churn_risk["min_risk"]["maximum"]) == (0, 1)


def test_security_per_operation(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["AdminKey"] == {**schemes["AdminKey"], "type": "apiKey", "in": "header", "name": "X-Admin-Key"}
    assert {schemes[name]["name"] for name in ("WebhookId", "WebhookTimestamp", "WebhookSignature")} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    for path, method, operation in _operations(schema):
        requirements = [set(requirement) for requirement in operation.get("security", [])]
        if path.startswith("/api/crm/jobs/"):
            assert requirements == [{"AdminKey"}], (path, method)
        elif path.startswith("/api/crm/webhooks/"):
            assert requirements == [{"WebhookId", "WebhookTimestamp", "WebhookSignature"}], (path, method)
        else:
            assert requirements == [{"ServiceApiKey"}, {"UserJwt"}, {"StaffSession"}], (path, method)
    single = schema["paths"]["/api/crm/webhooks/app-event"]["post"]
    assert [p["name"] for p in single["parameters"]] == ["Idempotency-Key"]
    assert single["parameters"][0]["schema"]["maxLength"] == 255


def test_goal_creation_states_which_metric_fits_which_type(schema):
    branches = schema["components"]["schemas"]["GoalCreateInput"]["anyOf"]
    nutrition = [b for b in branches if b["properties"]["goal_type"]["enum"] == ["nutrition"]]
    assert {tuple(b["properties"]["metric"]["enum"]) for b in nutrition} == {
        ("calories_kcal", "carbs_g", "fat_g", "protein_g")
    }
    with_metric, by_unit = sorted(nutrition, key=lambda b: "metric" not in b["required"])
    assert "metric" in with_metric["required"]
    assert "metric" not in by_unit["required"]
    assert "[kK][cC][aA][lL]" in by_unit["properties"]["goal_unit"]["pattern"]
