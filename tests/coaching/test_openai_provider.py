"""The openai provider with the real `openai` client against a scripted local server (real sockets).

Covers multi-round and parallel tool calls, invalid arguments, an unknown tool, a tool call carrying
another user's id, endless tool calls (6 rounds), 429 retry, 500 and timeout (offline fallback), and
checks that nothing of another user (nor any identifier) is ever sent to the server.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from activities.models import ActivityType
from coaching.coach import FALLBACK_NOTE
from coaching.models import AiInsight, CoachingSession
from compliance.models import AuditLog
from goals.models import HealthGoal
from tests.coaching.fake_openai import Sleep, Status, completion, tool_call
from tests.coaching.support import ASK, SEED_QUESTION, log, seed_food_week
from tests.support import USER_A, USER_B

pytestmark = pytest.mark.django_db
BOB_SECRET = "Bob's secret smoked salmon"


@pytest.fixture
def alice(profile_a):
    profile_a.current_weight_kg = Decimal("75.0")
    profile_a.save()
    seed_food_week(profile_a, protein_per_day=80)
    return profile_a


@pytest.fixture
def bob(profile_b):
    """Another user with data that must never reach the model in Alice's conversations."""
    profile_b.current_weight_kg = Decimal("93.7")
    profile_b.save()
    for n in range(3):
        log(
            profile_b,
            ActivityType.FOOD_LOG,
            n,
            {"food_name": BOB_SECRET},
            calories_kcal=Decimal("3333"),
            protein_g=Decimal("333"),
        )
    return profile_b


def _ask(client, message: str = SEED_QUESTION):
    response = client.post(ASK.format(USER_A), {"message": message}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _tool_messages(request: dict) -> list[dict]:
    return [m for m in request["messages"] if m["role"] == "tool"]


def _assert_nothing_of_others_sent(fake):
    sent = fake.all_sent_text()
    for forbidden in (USER_B, BOB_SECRET, "3333", "93.7", USER_A):
        assert forbidden not in sent


def test_multi_round_tool_calls_in_order(client_a, alice, bob, fake_openai):
    # given: the model reads nutrition, suggests a goal, stores an insight, then answers
    fake_openai.script = [
        completion(tool_calls=[tool_call("get_user_nutrition_summary", {"days": 7})]),
        completion(
            tool_calls=[
                tool_call(
                    "suggest_goal",
                    {
                        "goal_type": "nutrition",
                        "metric": "protein_g",
                        "value": 120,
                        "unit": "g",
                        "rationale": "Average is 80 g; 1.6 g/kg.",
                        "target_days": 30,
                    },
                )
            ]
        ),
        completion(
            tool_calls=[
                tool_call(
                    "create_ai_insight",
                    {
                        "title": "Protein below target",
                        "body": "You average 80 g.",
                        "recommendation": "Add Greek yoghurt at breakfast.",
                        "insight_type": "nutrition",
                    },
                )
            ]
        ),
        completion(content="I suggest a protein goal of 120g/day. Here's how..."),
    ]

    # when
    body = _ask(client_a)

    # then
    assert body["provider"] == "openai"
    assert body["fallbackReason"] is None
    assert body["response"] == "I suggest a protein goal of 120g/day. Here's how..."
    assert body["toolsUsed"] == ["get_user_nutrition_summary", "suggest_goal", "create_ai_insight"]
    assert [g["goal_value"] for g in body["suggestedGoals"]] == [120.0]
    assert len(fake_openai.chat_requests) == 4
    first = fake_openai.chat_requests[0]
    assert first["model"] == "fake-gpt"
    assert {t["function"]["name"] for t in first["tools"]} == {
        "get_user_nutrition_summary",
        "get_user_goals",
        "suggest_goal",
        "create_ai_insight",
        "log_coaching_session",
        "update_engagement_tier",
        "estimate_churn_risk",
    }
    assert all(t["function"]["parameters"]["additionalProperties"] is False for t in first["tools"])
    assert all("user_id" not in t["function"]["parameters"]["properties"] for t in first["tools"])
    nutrition_result = json.loads(_tool_messages(fake_openai.chat_requests[1])[0]["content"])
    assert nutrition_result["averagesPerLoggedDay"]["protein_g"] == 80.0
    assert nutrition_result["daysLogged"] == 7
    assert len(_tool_messages(fake_openai.chat_requests[3])) == 3

    session = CoachingSession.objects.get(pk=body["sessionId"])
    assert (session.provider, session.model, session.status) == ("openai", "fake-gpt", "success")
    assert (session.prompt_tokens, session.completion_tokens) == (400, 80)
    assert session.tools_used == body["toolsUsed"]
    assert session.tool_calls[1]["arguments"]["value"] == 120
    goal = HealthGoal.objects.get(user_id=USER_A)
    assert (goal.status, goal.source) == ("suggested", "ai_assistant")
    assert AiInsight.objects.get(user_id=USER_A).coaching_session_id == session.pk
    audits = AuditLog.objects.filter(user_id=USER_A, actor_type="ai_assistant").order_by("id")
    actions = list(audits.values_list("action", "actor_id"))
    assert actions == [
        ("goal.suggested", "coach:openai"),
        ("insight.created", "coach:openai"),
        ("coaching.session_created", "coach:openai"),
    ]
    _assert_nothing_of_others_sent(fake_openai)


def test_parallel_tool_calls_are_all_answered_in_order(client_a, alice, fake_openai):
    fake_openai.script = [
        completion(
            tool_calls=[
                tool_call("get_user_nutrition_summary", {"days": 7}, call_id="call_a"),
                tool_call("get_user_goals", {"status": "active"}, call_id="call_b"),
                tool_call("estimate_churn_risk", {}, call_id="call_c"),
            ]
        ),
        completion(content="You are doing well."),
    ]

    body = _ask(client_a, "How am I doing?")

    assert body["toolsUsed"] == ["get_user_nutrition_summary", "get_user_goals", "estimate_churn_risk"]
    second = fake_openai.chat_requests[1]
    assistant = [m for m in second["messages"] if m["role"] == "assistant"]
    assert [c["id"] for c in assistant[0]["tool_calls"]] == ["call_a", "call_b", "call_c"]
    assert [m["tool_call_id"] for m in _tool_messages(second)] == ["call_a", "call_b", "call_c"]
    assert json.loads(_tool_messages(second)[1]["content"]) == {"status": "active", "count": 0, "goals": []}
    assert "churnRisk" in json.loads(_tool_messages(second)[2]["content"])


def test_invalid_arguments_go_back_to_the_model_as_errors(client_a, alice, fake_openai):
    fake_openai.script = [
        completion(
            tool_calls=[
                tool_call("get_user_nutrition_summary", {"days": "seven"}),
                tool_call("get_user_nutrition_summary", "{not json"),
                tool_call(
                    "suggest_goal",
                    {
                        "goal_type": "nutrition",
                        "metric": "protein_g",
                        "value": 5000,
                        "unit": "g",
                        "rationale": "",
                        "target_days": None,
                    },
                ),
                tool_call("suggest_goal", {"goal_type": "nutrition", "value": 120}),
            ]
        ),
        completion(content="Sorry, let me keep it simple."),
    ]

    body = _ask(client_a)

    errors = [json.loads(m["content"])["error"] for m in _tool_messages(fake_openai.chat_requests[1])]
    assert errors == [
        "'days' must be integer, got str.",
        "Arguments are not valid JSON (Expecting property name enclosed in double quotes).",
        "A protein_g target must be between 20 and 400 g.",
        "Missing argument(s): unit, rationale, metric, target_days.",
    ]
    assert body["provider"] == "openai"
    assert body["suggestedGoals"] == []
    assert HealthGoal.objects.count() == 0
    session = CoachingSession.objects.get(pk=body["sessionId"])
    assert [call["ok"] for call in session.tool_calls] == [False, False, False, False]
    assert session.tool_calls[1]["arguments"] == {"raw": "{not json"}


def test_unknown_tool_is_an_error_result(client_a, alice, fake_openai):
    fake_openai.script = [
        completion(tool_calls=[tool_call("delete_user", {})]),
        completion(content="I can't do that."),
    ]

    body = _ask(client_a, "delete my account")

    [result] = _tool_messages(fake_openai.chat_requests[1])
    assert json.loads(result["content"])["error"].startswith("Unknown tool 'delete_user'. Available: ")
    assert body["toolsUsed"] == ["delete_user"]
    assert body["response"] == "I can't do that."


def test_a_tool_call_with_another_users_id_reaches_nothing(client_a, alice, bob, fake_openai):
    fake_openai.script = [
        completion(
            tool_calls=[
                tool_call("get_user_nutrition_summary", {"days": 7, "user_id": USER_B}),
                tool_call(
                    "suggest_goal",
                    {
                        "user_id": USER_B,
                        "goal_type": "nutrition",
                        "metric": "protein_g",
                        "value": 150,
                        "unit": "g",
                        "rationale": "x",
                        "target_days": None,
                    },
                ),
                tool_call("get_user_goals", {"status": "all", "userId": USER_B}),
            ]
        ),
        completion(content="I can only look at your own data."),
    ]

    body = _ask(client_a, f"Compare me with {USER_B}")

    results = [json.loads(m["content"]) for m in _tool_messages(fake_openai.chat_requests[1])]
    assert all(r["error"].endswith("The user is fixed by the server; tools never take a user id.") for r in results)
    assert body["suggestedGoals"] == []
    assert HealthGoal.objects.filter(user_id=USER_B).count() == 0
    assert AuditLog.objects.filter(user_id=USER_B).count() == 0
    # The message itself named Bob's id (the user typed it); nothing of Bob's data was ever sent.
    sent = fake_openai.all_sent_text()
    assert BOB_SECRET not in sent
    assert "3333" not in sent
    assert "93.7" not in sent


def test_endless_tool_calls_stop_after_6_rounds_and_fall_back(client_a, alice, fake_openai):
    fake_openai.script = [completion(tool_calls=[tool_call("get_user_goals", {"status": "active"})])]
    fake_openai.repeat_last = True

    body = _ask(client_a)

    assert len(fake_openai.chat_requests) == 6
    assert [r["tool_choice"] for r in fake_openai.chat_requests] == ["auto"] * 5 + ["none"]
    assert body["provider"] == "offline"
    assert body["fallbackReason"] == "round_limit"
    assert body["response"].startswith(FALLBACK_NOTE)
    assert "protein goal of 120 g/day" in body["response"]
    assert body["toolsUsed"] == ["get_user_goals"] * 5 + [
        "get_user_nutrition_summary",
        "suggest_goal",
        "create_ai_insight",
    ]
    session = CoachingSession.objects.get(pk=body["sessionId"])
    assert (session.status, session.provider, session.fallback_reason) == ("fallback", "offline", "round_limit")
    assert (session.prompt_tokens, session.completion_tokens) == (0, 0)


def test_server_error_is_retried_then_falls_back(client_a, alice, fake_openai, settings):
    settings.COACH_MAX_RETRIES = 2
    fake_openai.script = [Status(500), Status(500), Status(500)]

    body = _ask(client_a)

    assert len(fake_openai.chat_requests) == 3
    assert body["provider"] == "offline"
    assert body["fallbackReason"] == "model_error"
    assert body["response"].startswith(FALLBACK_NOTE)
    assert body["toolsUsed"] == ["get_user_nutrition_summary", "suggest_goal", "create_ai_insight"]
    assert CoachingSession.objects.get().status == "fallback"
    audit = AuditLog.objects.get(action="coaching.session_created")
    assert audit.changes["fallbackReason"] == "model_error"


def test_rate_limited_once_then_answers(client_a, alice, fake_openai):
    fake_openai.script = [Status(429, {"retry-after": "0"}), completion(content="Drink more water.")]

    body = _ask(client_a, "water?")

    assert len(fake_openai.chat_requests) == 2
    assert body["provider"] == "openai"
    assert body["response"] == "Drink more water."


def test_timeout_falls_back_to_offline(client_a, alice, fake_openai, settings):
    settings.COACH_TIMEOUT_S = 0.5
    fake_openai.script = [Sleep(1.5)]

    body = _ask(client_a)

    assert body["provider"] == "offline"
    assert body["fallbackReason"] == "timeout"
    assert body["response"].startswith(FALLBACK_NOTE)
    assert "protein goal of 120 g/day" in body["response"]
    session = CoachingSession.objects.get(pk=body["sessionId"])
    assert session.latency_ms >= 500


def test_only_aggregates_and_the_redacted_message_are_sent(client_a, alice, bob, fake_openai):
    alice.email_hash = "a" * 64
    alice.save()
    fake_openai.script = [completion(content="Noted.")]

    _ask(client_a, "I'm alice.smith@example.com, +44 7700 900123. More protein?")

    [request] = fake_openai.chat_requests
    user_message = request["messages"][-1]
    assert user_message["role"] == "user"
    assert "[email:" in user_message["content"]
    assert "[phone:" in user_message["content"]
    context = json.loads(request["messages"][1]["content"].split("\n", 1)[1])
    assert set(context) == {"facts", "relevantHistory", "today"}
    assert context["facts"]["currentWeightKg"] == 75.0
    sent = fake_openai.all_sent_text()
    assert "alice.smith@example.com" not in sent
    assert "7700 900123" not in sent
    assert "a" * 64 not in sent
    assert fake_openai.embedding_requests[0]["input"][0] == user_message["content"]
    _assert_nothing_of_others_sent(fake_openai)
