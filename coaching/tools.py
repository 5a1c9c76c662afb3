"""The coach's tools: the seed's seven, one registry, strict JSON schemas, the user bound on the server.

Every provider (the OpenAI loop and the offline planner) calls tools only through `ToolRegistry.call`.
No schema has a user id: the user is the one of the `ToolContext` the server built from the URL after
its scope check, so no conversation can reach another user. Arguments are validated against the
schema (`additionalProperties: false`, types, ranges, enums) before anything runs; a bad call becomes
an error result the model can read and correct, never an exception.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from activities.selectors import engagement_signals_for_users, nutrition_summary_get
from coaching.churn_model import churn_scores_compute
from coaching.engagement import EngagementTierError, engagement_tier_for, engagement_tier_step
from coaching.models import InsightType
from coaching.services import insight_create
from compliance.pii import redact_pii
from goals.models import GOAL_TYPE_METRICS, GoalMetric, GoalStatus, GoalType, HealthGoal
from goals.rules import GOAL_TARGET_RANGES, goal_metric_fits, goal_metric_resolve
from goals.selectors import GOAL_STATUS_ALL, goal_list
from goals.services import goal_create, goal_update
from profiles.models import TIER_ORDER, CrmUserProfile, churn_band_for
from yahealthy_crm.actors import ActorType
from yahealthy_crm.errors import ApplicationError

MAX_INSIGHTS_PER_ASK = 1
MAX_SUGGESTED_GOALS_PER_ASK = 3


class ToolError(Exception):
    """A tool call the coach refuses (bad arguments, a rule); its message goes back to the model."""


@dataclass
class ToolContext:
    """One ask: the user (bound by the server), the calls made so far, the rows written."""

    profile: CrmUserProfile
    actor_id: str = "coach"
    today: dt.date = field(default_factory=timezone.localdate)
    calls: list[dict] = field(default_factory=list)
    suggested_goal_ids: list[int] = field(default_factory=list)
    insight_ids: list[int] = field(default_factory=list)
    summary: str = ""
    topics: list[str] = field(default_factory=list)

    @property
    def user_id(self) -> str:
        return self.profile.user_id

    @property
    def tools_used(self) -> list[str]:
        return [call["name"] for call in self.calls]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    handler: Callable[[ToolContext, dict], dict]
    summarize: Callable[[dict], str]

    def openai_schema(self) -> dict:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
                "strict": True,
            },
        }


@dataclass(frozen=True)
class ToolOutcome:
    name: str
    arguments: dict
    result: dict
    ok: bool


# --- Argument validation (the JSON-schema subset the tools use) --------------------------------------


def _schema(properties: dict, required: list[str] | None = None) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": required if required is not None else list(properties),
        "additionalProperties": False,
    }


def _check(name: str, value: Any, spec: dict) -> Any:
    kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    if value is None:
        if "null" in kinds:
            return None
        raise ToolError(f"'{name}' must not be null.")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if ("integer" in kinds and is_number and isinstance(value, int)) or ("number" in kinds and is_number):
        pass
    elif "string" in kinds and isinstance(value, str):
        if len(value) > spec.get("maxLength", 10_000):
            raise ToolError(f"'{name}' is longer than {spec['maxLength']} characters.")
        if len(value.strip()) < spec.get("minLength", 0):
            raise ToolError(f"'{name}' must not be empty.")
    elif "array" in kinds and isinstance(value, list):
        if len(value) > spec.get("maxItems", 100):
            raise ToolError(f"'{name}' has more than {spec['maxItems']} items.")
        return [_check(f"{name}[{i}]", item, spec["items"]) for i, item in enumerate(value)]
    else:
        expected = " or ".join(kind for kind in kinds if kind != "null")
        raise ToolError(f"'{name}' must be {expected}, got {type(value).__name__}.")
    if "enum" in spec and value not in spec["enum"]:
        raise ToolError(f"'{name}' must be one of {', '.join(map(str, spec['enum']))}.")
    if "minimum" in spec and value < spec["minimum"]:
        raise ToolError(f"'{name}' must be at least {spec['minimum']}.")
    if "maximum" in spec and value > spec["maximum"]:
        raise ToolError(f"'{name}' must be at most {spec['maximum']}.")
    return value


def arguments_validate(tool: Tool, raw: str | dict | None) -> dict:
    """Parse and validate the model's arguments against the tool's schema (ToolError when wrong)."""
    if raw is None or raw == "":
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ToolError(f"Arguments are not valid JSON ({exc.msg}).") from None
    if not isinstance(raw, dict):
        raise ToolError("Arguments must be a JSON object.")
    properties = tool.parameters["properties"]
    unknown = sorted(set(raw) - set(properties))
    if unknown:
        hint = (
            " The user is fixed by the server; tools never take a user id."
            if any("user" in name.lower() for name in unknown)
            else ""
        )
        raise ToolError(f"Unknown argument(s): {', '.join(unknown)}.{hint}")
    missing = [name for name in tool.parameters["required"] if name not in raw]
    if missing:
        raise ToolError(f"Missing argument(s): {', '.join(missing)}.")
    return {name: _check(name, raw[name], properties[name]) for name in raw}


# --- The seven tools -----------------------------------------------------------------------------


def _nutrition_summary(ctx: ToolContext, args: dict) -> dict:
    days = args.get("days") or 7
    summary = nutrition_summary_get(user_id=ctx.user_id, days=days, today=ctx.today)
    return {
        "days": summary.days,
        "daysLogged": summary.days_logged,
        "averagesPerLoggedDay": summary.averages,
        "today": summary.today,
        "daily": summary.daily,
        "currentWeightKg": float(ctx.profile.current_weight_kg) if ctx.profile.current_weight_kg else None,
    }


def _goal_dict(goal: HealthGoal) -> dict:
    return {
        "goalType": goal.goal_type,
        "metric": goal.metric,
        "value": float(goal.goal_value),
        "unit": goal.goal_unit,
        "status": goal.status,
        "progressPct": float(goal.progress_pct),
        "streakDays": goal.streak_days,
        "targetDate": goal.target_date.isoformat() if goal.target_date else None,
        "source": goal.source,
    }


def _user_goals(ctx: ToolContext, args: dict) -> dict:
    status = args.get("status") or GoalStatus.ACTIVE
    goals = list(goal_list(user_id=ctx.user_id, status=status)[:20])
    return {"status": status, "count": len(goals), "goals": [_goal_dict(goal) for goal in goals]}


def _suggest_goal(ctx: ToolContext, args: dict) -> dict:
    goal_type, unit, value = args["goal_type"], args["unit"].strip(), args["value"]
    metric = args.get("metric")
    if metric and not goal_metric_fits(goal_type=goal_type, metric=metric):
        raise ToolError(f"metric {metric} does not fit goal_type {goal_type}.")
    if len(ctx.suggested_goal_ids) >= MAX_SUGGESTED_GOALS_PER_ASK:
        raise ToolError(f"At most {MAX_SUGGESTED_GOALS_PER_ASK} goals can be suggested in one conversation.")
    try:
        metric = goal_metric_resolve(goal_type=goal_type, goal_unit=unit, metric=metric)
    except ApplicationError as exc:
        raise ToolError(f"{exc.message} {exc.details}") from None
    low, high = GOAL_TARGET_RANGES[metric]
    if not low <= value <= high:
        raise ToolError(f"A {metric} target must be between {low:g} and {high:g} {unit}.")
    # One open suggestion per metric: asking twice must not pile up suggestions for the same thing,
    # and a new value ("make it 110 instead") changes the open suggestion rather than adding a second.
    existing = (
        HealthGoal.objects.filter(user_id=ctx.user_id, metric=metric, status=GoalStatus.SUGGESTED)
        .order_by("-created_at", "-id")
        .first()
    )
    target_days = args.get("target_days")
    if existing is not None:
        if existing.pk not in ctx.suggested_goal_ids:
            ctx.suggested_goal_ids.append(existing.pk)
        previous = float(existing.goal_value)
        if previous == float(value):
            return {"created": False, "alreadySuggested": True, "goal": _goal_dict(existing)}
        fields: dict[str, Any] = {"goal_value": Decimal(str(round(value, 2)))}
        if target_days:
            fields["target_date"] = ctx.today + dt.timedelta(days=target_days)
        goal = goal_update(
            goal_id=existing.pk,
            user_id=ctx.user_id,
            fields=fields,
            actor_type=ActorType.AI_ASSISTANT,
            actor_id=ctx.actor_id,
        )
        return {
            "created": False,
            "updated": True,
            "previousValue": previous,
            "goal": _goal_dict(goal),
            "note": "The open suggestion now has this target; the user accepts or declines it in the app.",
        }
    goal = goal_create(
        user_id=ctx.user_id,
        goal_type=goal_type,
        metric=metric,
        goal_value=Decimal(str(round(value, 2))),
        goal_unit=unit,
        status=GoalStatus.SUGGESTED,
        target_date=ctx.today + dt.timedelta(days=target_days) if target_days else None,
        rationale=redact_pii(args.get("rationale") or ""),
        actor_type=ActorType.AI_ASSISTANT,
        actor_id=ctx.actor_id,
    )
    ctx.suggested_goal_ids.append(goal.pk)
    return {"created": True, "goal": _goal_dict(goal), "note": "The user accepts or declines it in the app."}


def _create_insight(ctx: ToolContext, args: dict) -> dict:
    if len(ctx.insight_ids) >= MAX_INSIGHTS_PER_ASK:
        raise ToolError("An insight was already stored for this conversation.")
    insight = insight_create(
        user_id=ctx.user_id,
        title=redact_pii(args["title"].strip()),
        body=redact_pii(args["body"].strip()),
        recommendation=redact_pii((args.get("recommendation") or "").strip()),
        insight_type=args.get("insight_type") or InsightType.GENERAL,
        actor_type=ActorType.AI_ASSISTANT,
        actor_id=ctx.actor_id,
    )
    ctx.insight_ids.append(insight.pk)
    return {"created": True, "title": insight.title, "insightType": insight.insight_type}


def _log_session(ctx: ToolContext, args: dict) -> dict:
    ctx.summary = redact_pii(args["summary"].strip())
    ctx.topics = [topic.strip()[:40] for topic in args.get("topics") or [] if topic.strip()]
    return {"logged": True, "note": "The summary is stored with this coaching session."}


def _update_tier(ctx: ToolContext, args: dict) -> dict:
    try:
        old, new = engagement_tier_step(
            user_id=ctx.user_id, tier=args["tier"], actor_type=ActorType.AI_ASSISTANT, actor_id=ctx.actor_id
        )
    except EngagementTierError as exc:
        raise ToolError(str(exc)) from None
    ctx.profile.engagement_tier = new
    return {"updated": True, "from": old, "to": new}


def _churn_risk(ctx: ToolContext, args: dict) -> dict:
    now = timezone.now()
    signals = engagement_signals_for_users(user_ids=[ctx.user_id], now=now)[ctx.user_id]
    scores = churn_scores_compute(now=now, user_ids=[ctx.user_id])
    risk, factors = (scores[0].risk, scores[0].factors) if scores else (0.0, {})
    drivers = factors.get("drivers", [])
    return {
        "churnRisk": risk,
        "band": churn_band_for(risk).value,
        "drivers": drivers,
        "factors": {
            "daysInactive": factors.get("daysInactive"),
            "typicalGapDays": factors.get("typicalGapDays"),
            "activities7d": signals.activities_7d,
            "activities30d": signals.activities_30d,
            "activeDays14d": signals.active_days_14d,
        },
        "engagementTier": ctx.profile.engagement_tier,
        "engagementTierJustified": engagement_tier_for(signals).value,
        "retentionActions": [
            RETENTION_ACTIONS[driver["feature"]]
            for driver in drivers
            if driver["effect"] == "raises risk" and driver["feature"] in RETENTION_ACTIONS
        ][:2],
    }


# What to suggest when a driver raises the risk (the weekly job picks its own action type).
RETENTION_ACTIONS = {
    "recency_ratio": "Send a gentle check-in and suggest logging one meal today.",
    "active_days_28": "Suggest one tiny daily habit (log water or breakfast) to rebuild the routine.",
    "trend": "Acknowledge the busy weeks and propose a smaller goal for the next 7 days.",
    "goal_progress": "Offer an easier goal the user can meet this week.",
}


NUTRITION_METRICS = list(GOAL_TYPE_METRICS[GoalType.NUTRITION])
TOOLS: list[Tool] = [
    Tool(
        "get_user_nutrition_summary",
        "The user's calories and macros (protein, carbs, fat) over the last `days` days: averages per "
        "logged day, today's totals and one row per logged day. Also their current body weight.",
        _schema({"days": {"type": "integer", "minimum": 1, "maximum": 90, "description": "Default 7."}}),
        _nutrition_summary,
        lambda r: f"{r['daysLogged']}/{r['days']} days logged, averages {r['averagesPerLoggedDay']}",
    ),
    Tool(
        "get_user_goals",
        "The user's health goals with targets, progress and streaks (active ones by default).",
        _schema({"status": {"type": "string", "enum": [*GoalStatus.values, GOAL_STATUS_ALL]}}),
        _user_goals,
        lambda r: (
            f"{r['count']} {r['status']} goal(s): "
            + ", ".join(f"{g['metric']} {g['value']:g} {g['unit']}" for g in r["goals"])
        ),
    ),
    Tool(
        "suggest_goal",
        "Propose a new goal to the user. It is stored with status 'suggested'; the user accepts or "
        "declines it in the app. `value` is the daily target (or the target weight for weight goals). "
        "There is one open suggestion per metric: suggesting another value for the same metric (the "
        "user asks to change it) updates that suggestion instead of adding a second one.",
        _schema(
            {
                "goal_type": {"type": "string", "enum": list(GoalType.values)},
                "metric": {"type": ["string", "null"], "enum": [*GoalMetric.values, None]},
                "value": {"type": "number", "minimum": 0.1, "maximum": 100000},
                "unit": {"type": "string", "maxLength": 16, "minLength": 1},
                "rationale": {"type": "string", "maxLength": 500},
                "target_days": {"type": ["integer", "null"], "minimum": 7, "maximum": 365},
            },
            required=["goal_type", "value", "unit", "rationale", "metric", "target_days"],
        ),
        _suggest_goal,
        lambda r: (
            f"updated suggested {r['goal']['metric']} {r['previousValue']:g} -> "
            f"{r['goal']['value']:g} {r['goal']['unit']}"
            if r.get("updated")
            else ("suggested " if r.get("created") else "already suggested ")
            + f"{r['goal']['metric']} {r['goal']['value']:g} {r['goal']['unit']}"
        ),
    ),
    Tool(
        "create_ai_insight",
        "Store one personalised insight (what you noticed) with a concrete recommendation; the user "
        "sees it on their coaching page. At most one per conversation.",
        _schema(
            {
                "title": {"type": "string", "maxLength": 200, "minLength": 1},
                "body": {"type": "string", "maxLength": 2000, "minLength": 1},
                "recommendation": {"type": "string", "maxLength": 1000},
                "insight_type": {"type": "string", "enum": list(InsightType.values)},
            }
        ),
        _create_insight,
        lambda r: f"insight stored: {r['title']}",
    ),
    Tool(
        "log_coaching_session",
        "Record a one-paragraph summary and topics of this coaching conversation in the CRM.",
        _schema(
            {
                "summary": {"type": "string", "maxLength": 1000, "minLength": 1},
                "topics": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 8},
            }
        ),
        _log_session,
        lambda r: "session summary logged",
    ),
    Tool(
        "update_engagement_tier",
        "Move the user's engagement tier one step (bronze < silver < gold < platinum), only when "
        "their activity data justify it (see estimate_churn_risk's engagementTierJustified).",
        _schema({"tier": {"type": "string", "enum": [tier.value for tier in TIER_ORDER]}}),
        _update_tier,
        lambda r: f"tier {r['from']} -> {r['to']}",
    ),
    Tool(
        "estimate_churn_risk",
        "The user's churn risk (0-1) with the factors behind it, the tier their activity justifies, "
        "and suggested retention actions.",
        _schema({}),
        _churn_risk,
        lambda r: f"churn risk {r['churnRisk']} ({r['band']})",
    ),
]


class ToolRegistry:
    def __init__(self, tools: list[Tool]) -> None:
        self.tools = {tool.name: tool for tool in tools}

    def openai_schemas(self) -> list[dict]:
        return [tool.openai_schema() for tool in self.tools.values()]

    def call(self, ctx: ToolContext, name: str, raw_arguments: str | dict | None) -> ToolOutcome:
        """Validate and run one tool call for `ctx`'s user; errors become `{"error": ...}` results."""
        tool = self.tools.get(name)
        arguments: dict = raw_arguments if isinstance(raw_arguments, dict) else {}
        try:
            if tool is None:
                raise ToolError(f"Unknown tool '{name}'. Available: {', '.join(self.tools)}.")
            arguments = arguments_validate(tool, raw_arguments)
            result = tool.handler(ctx, arguments)
            outcome = ToolOutcome(name, arguments, result, ok=True)
            summary = tool.summarize(result)
        except ToolError as exc:
            outcome = ToolOutcome(name, arguments, {"error": str(exc)}, ok=False)
            summary = f"error: {exc}"
        ctx.calls.append(
            {
                "name": name[:64],
                "arguments": arguments
                if outcome.ok or isinstance(raw_arguments, dict)
                else {"raw": redact_pii(str(raw_arguments))[:500]},
                "ok": outcome.ok,
                "summary": redact_pii(summary)[:500],
            }
        )
        return outcome


registry = ToolRegistry(TOOLS)
