"""The tool registry: strict schemas, no user id anywhere, validation, write rules, audit."""

from __future__ import annotations

import pytest

from activities.models import ActivityType
from coaching.tools import TOOLS, ToolContext, registry
from compliance.models import AuditLog
from goals.models import HealthGoal
from tests.coaching.support import log

pytestmark = pytest.mark.django_db


def test_seven_strict_tools_without_user_ids():
    assert [tool.name for tool in TOOLS] == [
        "get_user_nutrition_summary",
        "get_user_goals",
        "suggest_goal",
        "create_ai_insight",
        "log_coaching_session",
        "update_engagement_tier",
        "estimate_churn_risk",
    ]
    for schema in registry.openai_schemas():
        parameters = schema["function"]["parameters"]
        assert schema["function"]["strict"] is True
        assert parameters["additionalProperties"] is False
        assert sorted(parameters["required"]) == sorted(parameters["properties"])  # strict mode: all required
        assert not any("user" in name for name in parameters["properties"])


@pytest.mark.parametrize(
    ("tier", "error"),
    [
        ("gold", "Tiers move one step at a time: from bronze only to a neighbouring tier."),
        ("silver", "The activity data justify bronze (active days in 14: 1, activities in 30 days: 1), not a move"),
        ("bronze", "The user is already bronze."),
    ],
)
def test_update_engagement_tier_refuses_what_the_data_do_not_justify(profile_a, tier, error):
    log(profile_a, ActivityType.WATER_LOG, 1, water_ml=250)
    ctx = ToolContext(profile=profile_a)

    outcome = registry.call(ctx, "update_engagement_tier", {"tier": tier})

    assert not outcome.ok
    assert outcome.result["error"].startswith(error)
    profile_a.refresh_from_db()
    assert profile_a.engagement_tier == "bronze"
    assert AuditLog.objects.filter(action="profile.engagement_tier_changed").count() == 0


def test_one_insight_per_ask_and_suggestion_limits(profile_a):
    ctx = ToolContext(profile=profile_a)
    insight = {"title": "t", "body": "b", "recommendation": "", "insight_type": "general"}

    assert registry.call(ctx, "create_ai_insight", insight).ok
    second = registry.call(ctx, "create_ai_insight", insight)

    assert second.result == {"error": "An insight was already stored for this conversation."}
    goal = {"metric": None, "rationale": "", "target_days": None}
    for goal_type, unit, value in (("water", "ml", 2000), ("sleep", "h", 8), ("activity", "steps", 8000)):
        assert registry.call(ctx, "suggest_goal", {**goal, "goal_type": goal_type, "unit": unit, "value": value}).ok
    fourth = {**goal, "goal_type": "activity", "unit": "min", "value": 30}
    assert registry.call(ctx, "suggest_goal", fourth).result["error"].startswith("At most 3 goals")
    assert HealthGoal.objects.filter(user=profile_a, status="suggested", source="ai_assistant").count() == 3
    assert AuditLog.objects.filter(actor_type="ai_assistant", action="goal.suggested").count() == 3


def test_log_coaching_session_redacts_the_summary(profile_a):
    ctx = ToolContext(profile=profile_a)

    outcome = registry.call(
        ctx, "log_coaching_session", {"summary": "Talked protein; reach me at a@b.example", "topics": ["protein"]}
    )

    assert outcome.ok
    assert "a@b.example" not in ctx.summary
    assert ctx.topics == ["protein"]
