"""POST /users/<id>/ask: the seed example, validation, consent, rate limit, scope, session and audit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coaching.models import AiInsight, CoachingSession
from compliance.models import AuditLog
from goals.models import HealthGoal
from tests.coaching.support import ASK, SEED_QUESTION, seed_food_week
from tests.support import USER_A, USER_B, rate_window_seconds_left

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(profile_a):
    profile_a.current_weight_kg = Decimal("75.0")
    profile_a.save()
    seed_food_week(profile_a, protein_per_day=80)
    return profile_a


def test_seed_example_suggests_120g_protein_goal(client_a, alice):
    # when
    response = client_a.post(ASK.format(USER_A), {"message": SEED_QUESTION}, format="json")

    # then: the seed's envelope, tools in the seed's order, a suggested goal derived from the data
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["toolsUsed"] == ["get_user_nutrition_summary", "suggest_goal", "create_ai_insight"]
    assert body["provider"] == "offline"
    assert body["fallbackReason"] is None
    assert "averaged 80 g of protein" in body["response"]
    assert "protein goal of 120 g/day" in body["response"]
    assert "1.6 g per kg" in body["response"]
    [goal] = body["suggestedGoals"]
    assert (goal["goal_type"], goal["metric"], goal["goal_value"], goal["goal_unit"]) == (
        "nutrition",
        "protein_g",
        120.0,
        "g",
    )
    assert goal["status"] == "suggested"
    assert goal["source"] == "ai_assistant"
    assert goal["accepted_at"] is None

    # the rows behind it
    assert HealthGoal.objects.filter(user_id=USER_A).count() == 1
    session = CoachingSession.objects.get(user_id=USER_A)
    assert body["sessionId"] == session.pk
    assert session.message == SEED_QUESTION
    assert session.response == body["response"]
    assert session.provider == "offline"
    assert session.status == "success"
    assert session.tools_used == body["toolsUsed"]
    assert session.tool_calls[0]["arguments"] == {"days": 7}
    assert session.tool_calls[1]["arguments"]["value"] == 120
    assert session.tool_calls[1]["summary"] == "suggested protein_g 120 g"
    insight = AiInsight.objects.get(user_id=USER_A)
    assert insight.coaching_session_id == session.pk
    assert insight.title == "Raise your protein to 120 g a day"
    assert "80 g" in insight.body
    audits = AuditLog.objects.filter(user_id=USER_A, actor_type="ai_assistant").order_by("id")
    assert list(audits.values_list("action", flat=True)) == [
        "goal.suggested",
        "insight.created",
        "coaching.session_created",
    ]
    assert audits.last().changes["requestedBy"] == f"user:{USER_A}"


def test_accepting_the_suggested_goal_activates_it(client_a, alice):
    goal = client_a.post(ASK.format(USER_A), {"message": SEED_QUESTION}, format="json").json()["suggestedGoals"][0]

    response = client_a.put(f"/api/crm/goals/{goal['id']}", {"status": "active"}, format="json")

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "active"


def test_asking_twice_does_not_pile_up_suggestions(client_a, alice):
    first = client_a.post(ASK.format(USER_A), {"message": SEED_QUESTION}, format="json").json()
    second = client_a.post(ASK.format(USER_A), {"message": SEED_QUESTION}, format="json").json()

    assert first["suggestedGoals"][0]["id"] == second["suggestedGoals"][0]["id"]
    assert "You already have it as a suggested goal" in second["response"]
    assert HealthGoal.objects.filter(user_id=USER_A).count() == 1
    assert CoachingSession.objects.filter(user_id=USER_A).count() == 2


@pytest.mark.parametrize(
    "payload",
    [
        {"message": ""},
        {"message": "   "},
        {"message": "x" * 2001},
        {"message": 42},
        {"message": None},
        {"message": ["protein?"]},
        {},
        {"message": "hi", "user_id": USER_B},
    ],
    ids=["empty", "blank", "too-long", "number", "null", "list", "missing", "unknown-field"],
)
def test_bad_messages_are_400_and_nothing_is_stored(client_a, alice, payload):
    response = client_a.post(ASK.format(USER_A), payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert CoachingSession.objects.count() == 0


def test_2000_characters_are_accepted(client_a, alice):
    message = "protein " * 249 + "proteins"
    assert len(message) == 2000

    response = client_a.post(ASK.format(USER_A), {"message": message}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "success"
    assert CoachingSession.objects.get(pk=response.json()["sessionId"]).message == message


def test_without_ai_consent_403_and_no_model_call(client_a, alice, fake_openai):
    alice.consent_ai_processing = False
    alice.save()

    response = client_a.post(ASK.format(USER_A), {"message": SEED_QUESTION}, format="json")

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "ai_consent_required"
    assert "not consented to AI processing" in error["message"]
    assert fake_openai.chat_requests == []
    assert fake_openai.embedding_requests == []
    assert CoachingSession.objects.count() == 0
    assert HealthGoal.objects.count() == 0


def _ask_hello(client, user_id):
    return client.post(ASK.format(user_id), {"message": "hello"}, format="json")


def test_eleventh_ask_in_a_minute_is_429_with_retry_after(client_a, alice, rate_limit_clock):
    for _ in range(10):
        answered = _ask_hello(client_a, USER_A)
        assert answered.status_code == 200
        assert answered.json()["status"] == "success"

    response = _ask_hello(client_a, USER_A)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) == rate_window_seconds_left(USER_A, now=rate_limit_clock)
    assert CoachingSession.objects.count() == 10


def test_rate_limit_is_per_user(client_a, client_b, alice, profile_b, rate_limit_clock):
    # given: Alice used up her ten asks of this window
    for _ in range(10):
        assert _ask_hello(client_a, USER_A).status_code == 200

    # when: both ask again in the same (frozen) window
    limited = _ask_hello(client_a, USER_A)
    other = _ask_hello(client_b, USER_B)

    # then: only Alice is limited
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) == rate_window_seconds_left(USER_A, now=rate_limit_clock)
    assert other.status_code == 200
    assert other.json()["status"] == "success"
    assert CoachingSession.objects.filter(user_id=USER_B).count() == 1
    assert CoachingSession.objects.filter(user_id=USER_A).count() == 10


def test_another_users_jwt_gets_404_and_nothing_runs(client_b, alice, profile_b):
    response = client_b.post(ASK.format(USER_A), {"message": SEED_QUESTION}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert CoachingSession.objects.count() == 0


@pytest.mark.parametrize(
    ("client_name", "expected", "sessions"),
    [("anon_client", (401, "error"), 0), ("service_client", (200, "success"), 1)],
)
def test_auth(request, alice, client_name, expected, sessions):
    client = request.getfixturevalue(client_name)

    response = client.post(ASK.format(USER_A), {"message": "How am I doing?"}, format="json")

    assert (response.status_code, response.json()["status"]) == expected
    assert CoachingSession.objects.filter(user_id=USER_A).count() == sessions


def test_staff_session_can_ask_for_a_user(staff_client, alice):
    response = staff_client.post(ASK.format(USER_A), {"message": "How am I doing?"}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "success"
    assert CoachingSession.objects.get(pk=response.json()["sessionId"]).user_id == USER_A
    audit = AuditLog.objects.get(action="coaching.session_created")
    assert audit.changes["requestedBy"] == "staff:carol"


def test_unknown_user_is_404(service_client, db):
    response = service_client.post(ASK.format("user_nobody"), {"message": "hi"}, format="json")

    assert response.status_code == 404


def test_pii_in_the_message_is_redacted_before_storage(client_a, alice):
    message = "Email me at alice.smith@example.com or call +44 7700 900123 about my protein"

    body = client_a.post(ASK.format(USER_A), {"message": message}, format="json").json()

    session = CoachingSession.objects.get(pk=body["sessionId"])
    assert "alice.smith@example.com" not in session.message
    assert "7700 900123" not in session.message
    assert "[email:" in session.message
    assert "[phone:" in session.message


def test_session_embedding_is_computed_after_commit(client_a, alice, django_capture_on_commit_callbacks, celery_eager):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        body = client_a.post(ASK.format(USER_A), {"message": SEED_QUESTION}, format="json").json()

    assert len(callbacks) == 1
    session = CoachingSession.objects.get(pk=body["sessionId"])
    assert session.embedding is not None
    assert len(session.embedding) == 256
