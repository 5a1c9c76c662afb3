"""Conversations: conversationId on /ask, follow-ups resolved against the previous turn (offline and
openai), the token budget, scope (404 across users), coaching history grouped by conversation."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from drf_spectacular.generators import SchemaGenerator

from activities.embeddings import embed_texts
from coaching.models import AiInsight, CoachingConversation, CoachingSession
from coaching.providers import ask_plan_resolve
from coaching.selectors import ConversationTurn, coaching_session_text, conversation_turns_get
from compliance.models import AuditLog
from goals.models import HealthGoal
from tests.coaching.fake_openai import completion, tool_call
from tests.coaching.support import ASK, SEED_QUESTION, seed_food_week
from tests.support import USER_A, USER_B

pytestmark = pytest.mark.django_db
HISTORY = "/api/crm/users/{}/coaching-history"


@pytest.fixture
def alice(profile_a):
    profile_a.current_weight_kg = Decimal("75.0")
    profile_a.save()
    seed_food_week(profile_a, protein_per_day=80)  # carbs 200 g, fat 60 g a day
    return profile_a


def _ask(client, message: str, conversation_id: str | None = None, user_id: str = USER_A) -> dict:
    body = {"message": message}
    if conversation_id is not None:
        body["conversationId"] = conversation_id
    response = client.post(ASK.format(user_id), body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


# --- Offline: the seed's example, then follow-ups ---------------------------------------------------


def test_seed_example_then_make_it_110_updates_the_suggested_goal(client_a, alice):
    # given: the seed's question starts a conversation (nutrition summary -> 120 g -> insight)
    first = _ask(client_a, SEED_QUESTION)
    assert first["toolsUsed"] == ["get_user_nutrition_summary", "suggest_goal", "create_ai_insight"]
    assert "protein goal of 120 g/day" in first["response"]
    conversation_id = first["conversationId"]
    [goal] = first["suggestedGoals"]

    # when: the follow-up in the same conversation
    second = _ask(client_a, "Make it 110", conversation_id)

    # then: the same goal now says 110 g, no second suggestion, real numbers quoted
    assert second["conversationId"] == conversation_id
    assert second["toolsUsed"] == ["get_user_nutrition_summary", "suggest_goal"]
    assert [(g["id"], g["goal_value"], g["status"]) for g in second["suggestedGoals"]] == [
        (goal["id"], 110.0, "suggested")
    ]
    assert "changed your suggested protein goal from 120 to 110 g/day" in second["response"]
    assert (
        "Your 7-day average is 80 g (7 of 7 days logged), so that is 30 g more than what you do now"
        in (second["response"])
    )
    assert HealthGoal.objects.filter(user_id=USER_A).count() == 1
    assert HealthGoal.objects.get(user_id=USER_A).goal_value == Decimal("110.00")
    assert AiInsight.objects.filter(user_id=USER_A).count() == 1
    updated = AuditLog.objects.get(user_id=USER_A, action="goal.updated")
    assert (updated.actor_type, updated.changes["goal_value"]) == ("ai_assistant", {"old": 120.0, "new": 110.0})
    sessions = CoachingSession.objects.filter(user_id=USER_A).order_by("id")
    assert {s.conversation_id for s in sessions} == {uuid.UUID(conversation_id)}
    assert sessions[1].tool_calls[1]["summary"] == "updated suggested protein_g 120 -> 110 g"
    assert sessions[1].topics == ["protein"]
    session_audit = AuditLog.objects.filter(action="coaching.session_created").order_by("id").last()
    assert session_audit.changes["conversationId"] == conversation_id
    assert session_audit.changes["historyTurns"] == 1


def test_without_the_conversation_make_it_110_changes_nothing(client_a, alice):
    _ask(client_a, SEED_QUESTION)

    answer = _ask(client_a, "Make it 110")

    assert "suggest_goal" not in answer["toolsUsed"]
    assert HealthGoal.objects.get(user_id=USER_A).goal_value == Decimal("120.00")
    assert CoachingConversation.objects.filter(user_id=USER_A).count() == 2


def test_what_about_carbs_asks_for_carbs_what_the_previous_turn_asked(client_a, alice):
    conversation_id = _ask(client_a, SEED_QUESTION)["conversationId"]

    answer = _ask(client_a, "And what about carbs?", conversation_id)

    # the previous turn set a goal, so this one does too, for carbs (the planner's 7-day rule)
    assert answer["toolsUsed"] == ["get_user_nutrition_summary", "suggest_goal", "create_ai_insight"]
    assert "averaged 200 g of carbs per logged day" in answer["response"]
    assert [(g["metric"], g["goal_value"]) for g in answer["suggestedGoals"]] == [("carbs_g", 200.0)]
    assert HealthGoal.objects.filter(user_id=USER_A, metric="protein_g", goal_value=120).count() == 1


def test_what_about_fat_after_a_question_without_a_goal_stays_a_question(client_a, alice):
    conversation_id = _ask(client_a, "How much protein am I eating?")["conversationId"]

    answer = _ask(client_a, "what about fat?", conversation_id)

    assert answer["toolsUsed"] == ["get_user_nutrition_summary", "get_user_goals"]
    assert "averaged 60 g of fat per logged day" in answer["response"]
    assert answer["suggestedGoals"] == []


def test_that_goal_and_easier_refer_to_the_previous_suggestion(client_a, alice):
    conversation_id = _ask(client_a, SEED_QUESTION)["conversationId"]

    explained = _ask(client_a, "Is that goal realistic?", conversation_id)
    easier = _ask(client_a, "Can you make it a bit easier?", conversation_id)

    assert "The protein goal I suggested is 120 g/day" in explained["response"]
    assert "7-day average is 80 g (7 of 7 days logged), so that is 40 g more" in explained["response"]
    assert "suggest_goal" not in explained["toolsUsed"]
    # 10 % easier, rounded to 5 g; and the turn before ("that goal") still counts as the previous goal
    assert "from 120 to 110 g/day" in easier["response"]
    assert HealthGoal.objects.get(user_id=USER_A).goal_value == Decimal("110.00")


def test_a_value_outside_the_sensible_range_is_explained_not_stored(client_a, alice):
    conversation_id = _ask(client_a, SEED_QUESTION)["conversationId"]

    answer = _ask(client_a, "make it 900 instead", conversation_id)

    assert "I could not change the protein goal to 900 g" in answer["response"]
    assert "must be between" in answer["response"]
    assert HealthGoal.objects.get(user_id=USER_A).goal_value == Decimal("120.00")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("make it 110", ("protein", 110.0)),
        ("110 g instead please", ("protein", 110.0)),
        ("Could we lower that goal?", ("protein", 110.0)),
        ("that's too low, make it harder", ("protein", 130.0)),
        ("what about carbs?", ("carbs", None)),
        ("why?", ("protein", None)),
        ("How much water should I drink?", ("water", None)),
        ("Thanks!", (None, None)),
    ],
)
def test_follow_up_resolution(message, expected):
    previous = ConversationTurn(
        message=SEED_QUESTION,
        response="I suggest a protein goal of 120 g/day.",
        topics=("protein",),
        suggested_goal={"goalType": "nutrition", "metric": "protein_g", "value": 120, "unit": "g"},
        tokens=30,
    )

    plan = ask_plan_resolve(message, [previous])

    assert ((plan.topics or [None])[0], plan.new_value) == expected
    assert ask_plan_resolve(message, []).new_value is None  # no conversation: nothing to refer to


# --- Scope and validation ----------------------------------------------------------------------------


def test_unknown_or_another_users_conversation_is_404(client_a, client_b, alice, profile_b):
    bobs = _ask(client_b, "How am I doing?", user_id=USER_B)["conversationId"]
    sessions_before = CoachingSession.objects.count()

    for conversation_id in (bobs, str(uuid.uuid4())):
        response = client_a.post(
            ASK.format(USER_A), {"message": "Make it 110", "conversationId": conversation_id}, format="json"
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "conversation_not_found"
        history = client_a.get(HISTORY.format(USER_A), {"conversationId": conversation_id})
        assert history.status_code == 404
        assert history.json()["error"]["code"] == "conversation_not_found"

    assert CoachingSession.objects.count() == sessions_before
    bad = client_a.post(ASK.format(USER_A), {"message": "hi", "conversationId": "not-a-uuid"}, format="json")
    assert bad.status_code == 400
    assert "conversationId" in bad.json()["error"]["details"]
    # null is the same as leaving it out: a new conversation
    assert (
        client_a.post(ASK.format(USER_A), {"message": "hi", "conversationId": None}, format="json").status_code == 200
    )


def test_service_key_continues_the_users_conversation(service_client, client_a, alice):
    conversation_id = _ask(client_a, SEED_QUESTION)["conversationId"]

    answer = _ask(service_client, "make it 110", conversation_id)

    assert answer["conversationId"] == conversation_id
    assert HealthGoal.objects.get(user_id=USER_A).goal_value == Decimal("110.00")


# --- History ----------------------------------------------------------------------------------------


def test_history_groups_turns_by_conversation(client_a, client_b, alice, profile_b):
    first = _ask(client_a, SEED_QUESTION)["conversationId"]
    _ask(client_a, "Make it 110", first)
    second = _ask(client_a, "How much water should I drink?")["conversationId"]
    _ask(client_b, "How am I doing?", user_id=USER_B)

    page = client_a.get(HISTORY.format(USER_A))
    only_first = client_a.get(HISTORY.format(USER_A), {"conversationId": first})

    assert page.status_code == 200
    body = page.json()
    assert body["pagination"]["count"] == 2
    assert [c["conversationId"] for c in body["data"]] == [second, first]  # most recent turn first
    newest, oldest = body["data"]
    assert (newest["turnCount"], oldest["turnCount"]) == (1, 2)
    assert [t["message"] for t in oldest["turns"]] == [SEED_QUESTION, "Make it 110"]  # oldest turn first
    assert oldest["turns"][1]["toolsUsed"] == ["get_user_nutrition_summary", "suggest_goal"]
    assert oldest["lastTurnAt"] >= oldest["startedAt"]
    assert [c["conversationId"] for c in only_first.json()["data"]] == [first]
    assert client_a.get(HISTORY.format(USER_A), {"conversationId": "nope"}).status_code == 400


def test_conversations_are_erased_with_the_user(service_client, client_a, alice):
    _ask(client_a, SEED_QUESTION)

    assert service_client.delete(f"/api/crm/users/{USER_A}").status_code == 204

    assert CoachingConversation.objects.filter(user_id=USER_A).count() == 0
    assert CoachingSession.objects.filter(user_id=USER_A).count() == 0


def test_conversation_fields_are_in_the_openapi_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]

    ask_input = components["AskInput"]["properties"]["conversationId"]
    assert (ask_input["format"], ask_input.get("nullable")) == ("uuid", True)
    assert "conversationId" in components["AskOutput"]["required"]
    history = schema["paths"]["/api/crm/users/{user_id}/coaching-history"]["get"]
    assert "conversationId" in [p["name"] for p in history["parameters"]]
    conversation = components["ConversationOutput"]["properties"]
    assert {"conversationId", "startedAt", "lastTurnAt", "turnCount", "turns"} <= set(conversation)


# --- The token budget -------------------------------------------------------------------------------


def test_the_oldest_turns_are_dropped_first_to_fit_the_budget(profile_a):
    conversation = CoachingConversation.objects.create(user=profile_a, last_turn_at="2026-01-05T10:00:00Z")
    for n in range(4):  # 4 turns of 100 + 100 characters = 50 tokens each
        CoachingSession.objects.create(
            user=profile_a, conversation=conversation, message=f"{n}" * 100, response="r" * 100, provider="offline"
        )

    kept = conversation_turns_get(conversation_id=conversation.pk, token_budget=120)
    tiny = conversation_turns_get(conversation_id=conversation.pk, token_budget=10)

    assert [turn.message[0] for turn in kept] == ["2", "3"]  # oldest first, the two newest kept
    assert sum(turn.tokens for turn in kept) == 100
    # the latest turn is always kept (a follow-up refers to it), cut down to the budget
    assert [turn.message[0] for turn in tiny] == ["3"]
    assert len(tiny[0].message) + len(tiny[0].response) == 40


# --- The openai provider: the turns go to the model as messages ----------------------------------------


def test_openai_gets_the_turns_redacted_and_updates_the_goal(client_a, alice, fake_openai, settings):
    # given: a first turn in which the model suggested 120 g (the user's e-mail in the question)
    fake_openai.script = [
        completion(
            tool_calls=[
                tool_call(
                    "suggest_goal",
                    {
                        "goal_type": "nutrition",
                        "metric": "protein_g",
                        "value": 120,
                        "unit": "g",
                        "rationale": "Average 80 g.",
                        "target_days": 30,
                    },
                )
            ]
        ),
        completion(content="I suggest a protein goal of 120 g/day."),
    ]
    first = _ask(client_a, "Protein goal please, mail me at alice@example.com")
    # when: "make it 110" in the same conversation; the model changes the goal
    fake_openai.script = [
        completion(
            tool_calls=[
                tool_call(
                    "suggest_goal",
                    {
                        "goal_type": "nutrition",
                        "metric": "protein_g",
                        "value": 110,
                        "unit": "g",
                        "rationale": "User asked for 110 g.",
                        "target_days": 30,
                    },
                )
            ]
        ),
        completion(content="Done: 110 g/day it is."),
    ]
    second = _ask(client_a, "Make it 110 instead", first["conversationId"])

    # then: the request carried the previous turn as user/assistant messages, redacted as stored
    request = fake_openai.chat_requests[2]
    roles = [m["role"] for m in request["messages"]]
    assert roles == ["system", "system", "user", "assistant", "user"]
    previous_question, previous_answer, question = (m["content"] for m in request["messages"][2:])
    assert "alice@example.com" not in previous_question
    assert previous_question == CoachingSession.objects.get(pk=first["sessionId"]).message
    assert previous_answer == "I suggest a protein goal of 120 g/day."
    assert question == "Make it 110 instead"
    context = json.loads(request["messages"][1]["content"].split("\n", 1)[1])
    assert context["goalsSuggestedInThisConversation"] == [
        {"goalType": "nutrition", "metric": "protein_g", "value": 120, "unit": "g"}
    ]
    assert "alice@example.com" not in fake_openai.all_sent_text()
    # and the goal was updated, not doubled
    assert second["conversationId"] == first["conversationId"]
    assert [(g["id"], g["goal_value"]) for g in second["suggestedGoals"]] == [(first["suggestedGoals"][0]["id"], 110.0)]
    assert HealthGoal.objects.filter(user_id=USER_A).count() == 1


def test_openai_history_respects_the_token_budget(client_a, alice, fake_openai, settings):
    fake_openai.script = [completion(content="A" * 400), completion(content="B" * 400), completion(content="C")]
    conversation_id = _ask(client_a, "first question")["conversationId"]
    _ask(client_a, "second question", conversation_id)
    settings.COACH_HISTORY_TOKEN_BUDGET = 120  # one turn of ~104 tokens fits, two do not

    _ask(client_a, "third question", conversation_id)

    contents = [m["content"] for m in fake_openai.chat_requests[2]["messages"][2:]]
    assert contents == ["second question", "B" * 400, "third question"]
    assert len(fake_openai.chat_requests[1]["messages"]) == 5  # the second ask saw the first turn


def test_retrieval_leaves_out_the_turns_of_the_current_conversation(client_a, alice, fake_openai):
    # given: a first turn whose session is embedded (the after-commit task, run here by hand)
    fake_openai.script = [completion(content="Eat more lentils for protein.")]
    first = _ask(client_a, "Protein ideas with lentils?")
    session = CoachingSession.objects.get(pk=first["sessionId"])
    CoachingSession.objects.filter(pk=session.pk).update(embedding=embed_texts([coaching_session_text(session)])[0])
    fake_openai.script = [completion(content="Lentil soup."), completion(content="Lentil curry.")]

    # when: the same question inside the conversation, then in a new one
    _ask(client_a, "More protein ideas with lentils?", first["conversationId"])
    _ask(client_a, "More protein ideas with lentils?")

    # then: inside, the turn comes as a message, not again as retrieved history; outside, it is retrieved
    def retrieved_sessions(request):
        context = json.loads(request["messages"][1]["content"].split("\n", 1)[1])
        return [item for item in context["relevantHistory"] if item["kind"] == "session"]

    inside, outside = fake_openai.chat_requests[1], fake_openai.chat_requests[2]
    assert retrieved_sessions(inside) == []
    assert "Protein ideas with lentils?" in [m["content"] for m in inside["messages"]]
    assert [item["text"] for item in retrieved_sessions(outside)] == [
        "Asked: Protein ideas with lentils? | Coach: Eat more lentils for protein."
    ]
