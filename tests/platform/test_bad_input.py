"""Bad input through every write endpoint and the webhooks: a clear 4xx, nothing stored.

Each corpus entry is sent to each write operation (the REST writes with a service key, the webhooks
signed over the exact bytes sent). The answer must be a 4xx in the one error shape with a message a
developer can act on, and no row may appear in the tables a write touches. Rejected webhook events
are recorded as `failed` sync events by design (docs/sync.md), so only the other sync events count.
Free text that looks like HTML is legitimate: it is stored as sent and shown escaped in admin.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from activities.models import UserActivity
from coaching.models import AiInsight, CoachingSession, RetentionAction
from compliance.models import AuditLog
from goals.models import HealthGoal
from profiles.models import CrmUserProfile
from sync.models import SyncEvent, SyncStatus
from tests.factories import GoalFactory, ProfileFactory
from tests.sync.support import WEBHOOK_SECRET, signed_headers
from yahealthy_crm.json_input import MAX_JSON_DEPTH

pytestmark = pytest.mark.django_db
USER = "bad_input_user"

# (name, path, a valid body, the free-text field the text entries go into)
ENDPOINTS = [
    ("create user", "post", "/api/crm/users", {"user_id": "new_user_1", "age": 30}, "user_id"),
    ("update user", "put", f"/api/crm/users/{USER}", {"age": 31}, "activity_level"),
    (
        "create goal",
        "post",
        f"/api/crm/users/{USER}/goals",
        {"goal_type": "water", "goal_value": 2000, "goal_unit": "ml", "rationale": "hydrate"},
        "goal_unit",
    ),
    ("update goal", "put", "/api/crm/goals/{goal_id}", {"progress_pct": 40}, "status"),
    ("ask the coach", "post", f"/api/crm/users/{USER}/ask", {"message": "How is my protein?"}, "message"),
    (
        "retention action",
        "post",
        f"/api/crm/users/{USER}/retention-actions",
        {"actionType": "easier_goal"},
        "actionType",
    ),
    (
        "webhook",
        "post",
        "/api/crm/webhooks/app-event",
        {
            "entityType": "food_log",
            "operation": "create",
            "userId": USER,
            "externalId": "food_bad_1",
            "occurredAt": "2026-01-05T12:00:00Z",
            "payload": {"food_name": "Rice", "calories": 300},
        },
        "payload.food_name",
    ),
    (
        "webhook batch",
        "post",
        "/api/crm/webhooks/app-events",
        {"events": []},
        "events",
    ),
]
JSON = "application/json"


def _with_text(body: dict, field: str, value) -> dict:
    body = json.loads(json.dumps(body))
    target = body
    *parents, name = field.split(".")
    for parent in parents:
        target = target[parent]
    target[name] = value
    return body


def _dumps(body) -> bytes:
    return json.dumps(body).encode()


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


# (name, how to make the raw body from the valid one and its text field, content type, expected statuses)
CORPUS = [
    ("truncated JSON", lambda b, f: _dumps(b)[:-7], JSON, {400}),
    ("malformed JSON", lambda b, f: b'{"age": 30,, }', JSON, {400}),
    ("trailing garbage", lambda b, f: _dumps(b) + b" xyz", JSON, {400}),
    ("not UTF-8", lambda b, f: _dumps(b).replace(b"{", b"{\xff", 1), JSON, {400, 401}),
    ("JSON array, not an object", lambda b, f: b"[1, 2, 3]", JSON, {400, 422}),
    ("form body", lambda b, f: b"age=30&user_id=x", "application/x-www-form-urlencoded", {415, 400}),
    (
        "multipart body",
        lambda b, f: b'--x\r\nContent-Disposition: form-data; name="age"\r\n\r\n30\r\n--x--\r\n',
        "multipart/form-data; boundary=x",
        {415, 400},
    ),
    ("XML body", lambda b, f: b"<user><age>30</age></user>", "application/xml", {415, 400}),
    ("plain text", lambda b, f: b"hello", "text/plain", {415, 400}),
    ("JSON in latin-1", lambda b, f: _dumps(b), "application/json; charset=latin-1", {415, 400}),
    ("deep nesting (arrays)", lambda b, f: b"[" * 100_000 + b"]" * 100_000, JSON, {400, 413}),
    ("deep nesting (objects)", lambda b, f: _dumps(_with_text(b, f, _nested(MAX_JSON_DEPTH + 5))), JSON, {400, 422}),
    ("huge number", lambda b, f: _dumps(b)[:-1] + b', "huge": 1e999}', JSON, {400}),
    ("huge integer", lambda b, f: _dumps(b)[:-1] + b', "huge": ' + b"9" * 5000 + b"}", JSON, {400}),
    ("NaN", lambda b, f: _dumps(b)[:-1] + b', "nan": NaN}', JSON, {400}),
    ("Infinity", lambda b, f: _dumps(b)[:-1] + b', "inf": -Infinity}', JSON, {400}),
    ("NUL byte in text", lambda b, f: _dumps(_with_text(b, f, "rice\u0000")), JSON, {400}),
    ("NUL byte in a key", lambda b, f: _dumps(b)[:-1] + b', "a\\u0000b": 1}', JSON, {400}),
    ("unpaired surrogate", lambda b, f: _dumps(b)[:-1] + b', "note": "\\ud800x"}', JSON, {400}),
    ("very long string", lambda b, f: _dumps(_with_text(b, f, "x" * 200_000)), JSON, {400, 413, 422}),
    ("number as text", lambda b, f: _dumps(_with_text(b, f, 12345)), JSON, {400, 422}),
    (
        "SQL in an identifier",
        lambda b, f: _dumps(_with_text(b, f, "x'); DROP TABLE crm_user_profiles;--")),
        JSON,
        {400, 422},
    ),
]
DATE_CORPUS = [
    # (endpoint name, field path, value, expected statuses)
    ("create goal", "target_date", "0001-01-01", {400}),
    ("create goal", "target_date", "2026-02-30", {400}),
    ("create goal", "target_date", "10000-01-01", {400}),
    ("update goal", "target_date", "1999-12-31", {400}),
    ("webhook", "occurredAt", "9999-12-31T23:59:59Z", {422}),
    ("webhook", "occurredAt", "0000-00-00T00:00:00Z", {422}),
    ("webhook", "payload.date", "-0001-01-01", {422}),
]


@pytest.fixture
def world(settings):
    settings.CRM_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.APP_WEBHOOK_URL = ""
    settings.COACH_PROVIDER = "offline"
    profile = ProfileFactory(user_id=USER, consent_marketing=True)
    return {"goal_id": GoalFactory(user=profile).pk}


def _counts() -> dict:
    return {
        "profiles": CrmUserProfile.objects.count(),
        "goals": HealthGoal.objects.count(),
        "activities": UserActivity.objects.count(),
        "insights": AiInsight.objects.count(),
        "coaching sessions": CoachingSession.objects.count(),
        "retention actions": RetentionAction.objects.count(),
        "audit rows": AuditLog.objects.count(),
        "sync events (not rejections)": SyncEvent.objects.exclude(status=SyncStatus.FAILED).count(),
    }


def _send(service_client, method: str, path: str, raw: bytes, content_type: str):
    headers = {}
    if "/webhooks/" in path:
        try:
            headers = signed_headers(raw.decode("utf-8"))
        except UnicodeDecodeError:
            headers = signed_headers("")
    return getattr(service_client, method)(path, data=raw, content_type=content_type, headers=headers)


def _assert_clear_refusal(response, expected: set[int]) -> None:
    assert response.status_code in expected, (response.status_code, response.content[:300])
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"]
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert len(message) > 10, message


# SQL is refused where an identifier or a choice is expected; in free text it is legitimate (below).
FREE_TEXT_FIELDS = {"message", "payload.food_name"}
CASES = [
    pytest.param(*entry, *endpoint, id=f"{endpoint[0]}: {entry[0]}")
    for endpoint in ENDPOINTS
    for entry in CORPUS
    if not (entry[0] == "SQL in an identifier" and endpoint[4] in FREE_TEXT_FIELDS)
]


@pytest.mark.parametrize(
    ("entry", "make_body", "content_type", "expected", "endpoint", "method", "path", "valid", "text_field"), CASES
)
def test_bad_input_is_a_clear_4xx_and_nothing_is_stored(
    world, service_client, entry, make_body, content_type, expected, endpoint, method, path, valid, text_field
):
    # given
    path = path.format(goal_id=world["goal_id"])
    raw = make_body(valid, text_field)
    before = _counts()
    # when
    response = _send(service_client, method, path, raw, content_type)
    # then
    _assert_clear_refusal(response, expected if "batch" not in endpoint else expected | {422})
    assert _counts() == before


@pytest.mark.parametrize(("endpoint", "field", "value", "expected"), DATE_CORPUS)
def test_dates_far_past_or_future_are_refused(world, service_client, endpoint, field, value, expected):
    _, method, path, valid, _ = next(e for e in ENDPOINTS if e[0] == endpoint)
    path = path.format(goal_id=world["goal_id"])
    before = _counts()
    response = _send(service_client, method, path, _dumps(_with_text(valid, field, value)), JSON)
    _assert_clear_refusal(response, expected)
    assert field.split(".")[-1] in json.dumps(response.json()["error"]["details"])
    assert _counts() == before


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e[0] != "webhook batch"], ids=lambda e: e[0])
def test_the_valid_bodies_of_the_corpus_are_accepted(world, service_client, endpoint):
    # The corpus mutates these bodies: they must pass as they are, or the refusals prove nothing.
    _, method, path, valid, _ = endpoint
    response = _send(service_client, method, path.format(goal_id=world["goal_id"]), _dumps(valid), JSON)
    assert response.status_code in (200, 201, 202), response.content[:300]


def test_html_and_sql_in_free_text_are_stored_as_sent_and_shown_escaped_in_admin(world, service_client):
    # given free text that looks like markup and SQL
    rationale = "<script>alert('x')</script> '; DROP TABLE crm_health_goals;--"
    response = service_client.post(
        f"/api/crm/users/{USER}/goals",
        {"goal_type": "water", "goal_value": 2000, "goal_unit": "ml", "rationale": rationale},
        format="json",
    )
    assert response.status_code == 201
    goal = HealthGoal.objects.get(pk=response.json()["data"]["id"])
    assert goal.rationale == rationale  # stored exactly as sent (parameterised SQL, no stripping)
    # when staff open the goal in admin
    staff = get_user_model().objects.create_superuser(username="admin-escape", password=None, email="")
    browser = Client()
    browser.force_login(staff)
    page = browser.get(f"/admin/goals/healthgoal/{goal.pk}/change/")
    # then the text is escaped, never markup
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(" in html


def test_a_note_with_html_through_the_webhook_is_escaped_in_the_activity_admin(world, client):
    body = json.dumps(
        {
            "entityType": "food_log",
            "operation": "create",
            "userId": USER,
            "externalId": "food_html",
            "payload": {"food_name": "<img src=x onerror=alert(1)>", "calories": 100},
        }
    )
    response = client.post("/api/crm/webhooks/app-event", data=body, content_type=JSON, headers=signed_headers(body))
    assert response.status_code == 202, response.content
    activity = UserActivity.objects.get(external_id="food_html")
    staff = get_user_model().objects.create_superuser(username="admin-escape-2", password=None, email="")
    browser = Client()
    browser.force_login(staff)
    html = browser.get(f"/admin/activities/useractivity/{activity.pk}/change/").content.decode()
    assert "<img src=x onerror" not in html
    assert "&lt;img src=x onerror" in html


def test_the_api_client_is_json_only(world):
    # A form body is refused even for a caller that could post forms (the browsable API's staff).
    staff = get_user_model().objects.create_superuser(username="form-staff", password=None, email="")
    client = APIClient()
    client.force_login(staff)
    response = client.post("/api/crm/users", {"user_id": "form_user"}, format="multipart")
    assert response.status_code == 415
    assert not CrmUserProfile.objects.filter(user_id="form_user").exists()


def test_the_corpus_covers_every_operation_that_takes_a_body():
    # A new write endpoint fails here until it is added to ENDPOINTS (and so gets the whole corpus).
    schema = SchemaGenerator().get_schema(request=None, public=True)
    with_body = {
        (method, path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    }
    covered = {(method, path.replace(USER, "{user_id}")) for _, method, path, _, _ in ENDPOINTS}
    assert with_body == covered
