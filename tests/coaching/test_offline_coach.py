"""The offline coach on each intent: the tools it calls and the numbers it quotes, checked against data."""

from __future__ import annotations

from decimal import Decimal

import pytest

from activities.models import ActivityType
from coaching.providers import intents_detect
from coaching.selectors import goal_target_suggest
from compliance.models import AuditLog
from goals.models import HealthGoal
from tests.coaching.support import ASK, log, seed_food_week, seed_habits
from tests.factories import GoalFactory
from tests.support import USER_A

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(profile_a):
    profile_a.current_weight_kg = Decimal("75.0")
    profile_a.save()
    seed_food_week(profile_a, protein_per_day=80, calories_per_day=2100, days=5)
    seed_habits(profile_a)
    return profile_a


def _ask(client, message):
    response = client.post(ASK.format(USER_A), {"message": message}, format="json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("message", "tools", "quotes", "goal"),
    [
        (
            "How much protein am I eating?",
            ["get_user_nutrition_summary", "get_user_goals"],
            ["averaged 80 g of protein per logged day (5 of 7 days logged)"],
            None,
        ),
        (
            "What about my calories and macros?",
            ["get_user_nutrition_summary", "get_user_goals"],
            ["2,100 kcal of calories", "80 g of protein", "200 g of carbs", "60 g of fat"],
            None,
        ),
        (
            "Help me set a calorie target",
            ["get_user_nutrition_summary", "suggest_goal", "create_ai_insight"],
            ["calorie goal of 2,100 kcal/day"],
            ("calories_kcal", 2100.0),
        ),
        (
            "Am I drinking enough water? Set me a goal",
            ["get_user_goals", "suggest_goal", "create_ai_insight"],
            ["water on 5 of the last 7 days, 1,500 ml per logged day", "water goal of 2,750 ml/day"],
            ("water_ml", 2750.0),
        ),
        (
            "I'm always tired, is my sleep ok?",
            ["get_user_goals"],
            ["You logged 4 nights in the last week, 6.5 hours a night on average."],
            None,
        ),
        (
            "Give me an exercise goal",
            ["get_user_goals", "suggest_goal", "create_ai_insight"],
            ["exercised on 3 of the last 7 days, 12.9 minutes a day", "exercise goal of 30 minutes/day"],
            ("exercise_minutes", 30.0),
        ),
        (
            "How are my steps?",
            ["get_user_goals"],
            ["You average 6,000 steps on the days you logged steps."],
            None,
        ),
        (
            "Is my weight going down?",
            ["get_user_goals"],
            ["weighed in 2 times: from 82 kg", "to 80.5 kg", "a change of -1.5 kg"],
            None,
        ),
        (
            "I feel like giving up",
            ["get_user_goals", "estimate_churn_risk"],
            ["activities in the last 7 days and were active on 5 of the last 14 days"],
            None,
        ),
        (
            "Hi coach",
            ["get_user_nutrition_summary", "get_user_goals"],
            ["logged food on 5 days, averaging 2,100 kcal and 80 g protein a day"],
            None,
        ),
    ],
    ids=["protein", "macros", "calorie-goal", "water-goal", "sleep", "exercise-goal", "steps", "weight",
         "motivation", "default"],
)  # fmt: skip
def test_intents(client_a, alice, message, tools, quotes, goal):
    body = _ask(client_a, message)

    assert body["toolsUsed"] == tools
    for quote in quotes:
        assert quote in body["response"]
    if goal:
        [suggested] = body["suggestedGoals"]
        assert (suggested["metric"], suggested["goal_value"], suggested["status"]) == (*goal, "suggested")
    else:
        assert body["suggestedGoals"] == []


def test_how_am_i_doing_promotes_one_tier_when_the_data_justify_it(client_a, profile_a):
    # given: active on 10 of the last 14 days with 45 activities in 30 days justify gold; the user is bronze
    for n in range(10):
        for _ in range(4):
            log(profile_a, ActivityType.WATER_LOG, n, water_ml=250)
    log(profile_a, ActivityType.WATER_LOG, 20, water_ml=250)
    for n in range(4):
        log(profile_a, ActivityType.EXERCISE, 21 + n, exercise_minutes=20)
    assert profile_a.engagement_tier == "bronze"

    body = _ask(client_a, "How am I doing?")

    assert body["toolsUsed"] == [
        "get_user_nutrition_summary",
        "get_user_goals",
        "estimate_churn_risk",
        "update_engagement_tier",
    ]
    assert "moved you up from bronze to silver" in body["response"]
    profile_a.refresh_from_db()
    assert profile_a.engagement_tier == "silver"  # one step, although gold is justified
    audit = AuditLog.objects.get(action="profile.engagement_tier_changed")
    assert (audit.actor_type, audit.changes["engagement_tier"]) == ("ai_assistant", {"old": "bronze", "new": "silver"})
    assert audit.changes["justifiedTier"] == "gold"


def test_generic_goal_follows_primary_goal(client_a, alice):
    alice.primary_goal = "muscle_gain"
    alice.save()

    body = _ask(client_a, "Can you help me set a goal?")

    assert body["toolsUsed"] == [
        "get_user_nutrition_summary",
        "get_user_goals",
        "suggest_goal",
        "create_ai_insight",
    ]
    assert [(g["metric"], g["goal_value"]) for g in body["suggestedGoals"]] == [("protein_g", 120.0)]


def test_active_goal_progress_is_quoted(client_a, alice):
    GoalFactory(user=alice, metric="protein_g", goal_value=Decimal("100"), status="active")

    body = _ask(client_a, "How is my protein?")

    assert "Your protein goal is 100 g a day: you are at 80 % of it." in body["response"]
    assert HealthGoal.objects.filter(status="suggested").count() == 0


def test_no_food_logs_says_so(client_a, profile_a):
    body = _ask(client_a, "How much protein do I eat?")

    assert "You have not logged any food in the last 7 days" in body["response"]


@pytest.mark.parametrize(
    ("average", "weight", "expected"),
    [(80, 75, 120), (80, 80, 130), (60, 100, 160), (150, 70, 155), (None, 75, 120), (80, None, 120), (200, None, 220)],
)
def test_protein_target_rule(average, weight, expected):
    target = goal_target_suggest(metric="protein_g", averages={"protein_g": average}, facts={"currentWeightKg": weight})
    assert target.value == expected


def test_intent_detection():
    assert intents_detect("I've been struggling to eat enough protein. Help me set a goal.") == (["protein"], True)
    assert intents_detect("how are my macros") == (["protein", "carbs", "fat"], False)
    assert intents_detect("I slept badly and feel fatigued") == (["sleep"], False)
