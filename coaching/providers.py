"""Coach providers behind one interface: `openai` (any OpenAI-compatible server) and `offline`.

Both get the same inputs (the redacted message, aggregate facts, retrieved history) and reach the
user's data only through the tool registry with the server-bound `ToolContext`.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from coaching.models import InsightType, RetentionActionType
from coaching.selectors import ConversationTurn, RetrievedItem, goal_target_suggest
from coaching.tools import ToolContext, registry
from goals.models import GOAL_TYPE_METRICS, GoalMetric

logger = logging.getLogger(__name__)

MAX_ROUNDS = 6


@dataclass
class CoachAnswer:
    text: str
    provider: str
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rounds: int = 0
    model_seconds: float = 0.0  # wall time spent waiting for model responses (HTTP included)


class CoachUnavailableError(Exception):
    """The model could not answer (timeout, server error, round limit); the offline coach takes over."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class InsightDraft:
    """The daily insight the coach writes from a user's numbers (one insight + one recommendation)."""

    title: str
    body: str
    recommendation: str
    insight_type: str
    provider: str = ""
    model: str = ""


@dataclass
class RetentionProposal:
    """The one retention action the coach proposes for an at-risk user, with the in-app text."""

    action_type: str
    title: str
    body: str
    recommendation: str
    provider: str = ""
    model: str = ""


class CoachProvider(Protocol):
    name: str

    def answer(
        self,
        *,
        ctx: ToolContext,
        message: str,
        facts: dict,
        retrieved: list[RetrievedItem],
        history: list[ConversationTurn],
    ) -> CoachAnswer:
        """`history`: the conversation's earlier turns, oldest first (empty for a new conversation)."""
        ...

    def daily_insight(self, *, facts: dict, summary: dict) -> InsightDraft:
        """`facts`: coach_facts_get; `summary`: {"nutrition": the nutrition tool's result, "goals": [...]}."""
        ...

    def retention_action(self, *, facts: dict, churn: dict, goals: list[dict], allowed: list[str]) -> RetentionProposal:
        """`churn`: risk, band, daysInactive, activities30d, drivers; the answer's type is one of `allowed`."""
        ...


# --- Offline ------------------------------------------------------------------------------------------

_TOPICS: list[tuple[str, re.Pattern]] = [
    ("protein", re.compile(r"\bprotein", re.I)),
    ("calories", re.compile(r"\b(calorie|kcal|energy intake)", re.I)),
    ("carbs", re.compile(r"\bcarb", re.I)),
    ("fat", re.compile(r"\bfats?\b", re.I)),
    ("macros", re.compile(r"\bmacro", re.I)),
    ("water", re.compile(r"\b(water|hydrat|drink|thirst)", re.I)),
    ("sleep", re.compile(r"\b(sleep|slept|tired|insomnia|rest\b|bedtime)", re.I)),
    ("steps", re.compile(r"\b(steps?|walk)", re.I)),
    ("exercise", re.compile(r"\b(exercis|workout|work out|training|activity|active|gym|run|cardio|move more)", re.I)),
    ("weight", re.compile(r"\b(weigh|kg\b|kilos?|pounds|lbs|lose|losing|scale|gain(ed|ing)? weight)", re.I)),
    ("overview", re.compile(r"(how am i doing|how'?s my|progress|overview|summary|on track|my week)", re.I)),
    ("motivation", re.compile(r"\b(motivat|give up|giving up|discourag|lazy|can'?t keep|fell off|stuck)", re.I)),
]
_GOAL_RE = re.compile(r"\b(goal|target|aim|set|plan|help me|should i)\b", re.I)
_TOPIC_METRIC = {
    "protein": GoalMetric.PROTEIN_G,
    "calories": GoalMetric.CALORIES_KCAL,
    "carbs": GoalMetric.CARBS_G,
    "fat": GoalMetric.FAT_G,
    "water": GoalMetric.WATER_ML,
    "sleep": GoalMetric.SLEEP_HOURS,
    "exercise": GoalMetric.EXERCISE_MINUTES,
    "steps": GoalMetric.STEPS,
    "weight": GoalMetric.WEIGHT_KG,
}
_NUTRIENT_KEY = {"protein": "protein_g", "calories": "calories_kcal", "carbs": "carbs_g", "fat": "fat_g"}
_UNITS = {"protein_g": "g", "calories_kcal": "kcal", "carbs_g": "g", "fat_g": "g"}
_TIPS = {
    GoalMetric.PROTEIN_G: "Add a palm-sized protein portion to each meal (eggs, Greek yoghurt, chicken, "
    "tofu, lentils) and keep one protein snack ready, such as cottage cheese or a shake.",
    GoalMetric.CALORIES_KCAL: "Plan meals a day ahead and log before you eat; swapping one snack a day "
    "moves the average more than one big change.",
    GoalMetric.CARBS_G: "Favour whole grains, fruit and legumes and pair carbs with protein.",
    GoalMetric.FAT_G: "Lean on olive oil, nuts and fish and watch fried food and creamy sauces.",
    GoalMetric.WATER_ML: "Keep a bottle in sight, drink a glass with every meal and one after exercise.",
    GoalMetric.SLEEP_HOURS: "Keep the same bedtime every night, and no screens or caffeine late.",
    GoalMetric.EXERCISE_MINUTES: "Book short sessions in your calendar; a brisk 10-minute walk counts.",
    GoalMetric.STEPS: "Take a walk after lunch and use stairs; a short evening walk adds 2000 steps.",
    GoalMetric.WEIGHT_KG: "Aim for about 0.5 kg a week: weigh in on the same morning each week.",
}
_METRIC_LABEL = {
    GoalMetric.PROTEIN_G: ("protein", "g/day"),
    GoalMetric.CALORIES_KCAL: ("calorie", "kcal/day"),
    GoalMetric.CARBS_G: ("carbohydrate", "g/day"),
    GoalMetric.FAT_G: ("fat", "g/day"),
    GoalMetric.WATER_ML: ("water", "ml/day"),
    GoalMetric.SLEEP_HOURS: ("sleep", "hours/night"),
    GoalMetric.EXERCISE_MINUTES: ("exercise", "minutes/day"),
    GoalMetric.STEPS: ("steps", "steps/day"),
    GoalMetric.WEIGHT_KG: ("weight", "kg"),
}
_INSIGHT_TYPE = {
    GoalMetric.WATER_ML: "hydration",
    GoalMetric.SLEEP_HOURS: "sleep",
    GoalMetric.EXERCISE_MINUTES: "activity",
    GoalMetric.STEPS: "activity",
    GoalMetric.WEIGHT_KG: "weight",
}
_PRIMARY_GOAL_METRIC = {"weight_loss": GoalMetric.CALORIES_KCAL, "muscle_gain": GoalMetric.PROTEIN_G}


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:.1f}"
    return f"{text} {unit}".strip()


def intents_detect(message: str) -> tuple[list[str], bool]:
    """The topics a message is about (in the order of `_TOPICS`) and whether it asks for a goal."""
    topics = [name for name, pattern in _TOPICS if pattern.search(message)]
    if "macros" in topics:
        topics = [t for t in topics if t != "macros"] + [t for t in ("protein", "carbs", "fat") if t not in topics]
    return topics, bool(_GOAL_RE.search(message))


# --- Follow-ups: what "make it 110", "that goal", "instead", "what about carbs?" refer to ----------------

_METRIC_TOPIC = {metric: topic for topic, metric in _TOPIC_METRIC.items()}
_METRIC_GOAL_TYPE = {
    metric: (goal_type, unit) for goal_type, metrics in GOAL_TYPE_METRICS.items() for metric, unit in metrics.items()
}
_NUMBER_RE = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(k\b)?", re.I)
_CHANGE_RE = re.compile(
    r"\b(make it|make that|set it|change it|change that|instead|rather|lower|raise|reduce|increase|bump|"
    r"go with|how about|what about|let'?s (?:do|say|go with)|can it be|try)\b",
    re.I,
)
_BACK_REFERENCE_RE = re.compile(r"\b(that|this|it|the same)\b", re.I)
_EASIER_RE = re.compile(r"\b(easier|lower|smaller|less|too (?:high|hard|much|ambitious|big))\b", re.I)
_HARDER_RE = re.compile(r"\b(harder|higher|bigger|more ambitious|too (?:low|easy|small))\b", re.I)
# "thanks", "ok": a reply that asks nothing, not a question about the previous turn.
_ACKNOWLEDGEMENT_RE = re.compile(r"^\W*(thanks|thank you|thx|ok(ay)?|great|cool|got it|perfect|nice)\W*$", re.I)
_TOPIC_SWITCH_RE = re.compile(r"^\W*(and|what about|how about|same for|now|also)\b|\binstead\b", re.I)
SHORT_FOLLOW_UP_WORDS = 6  # "make it 110", "why?", "and carbs?": short messages lean on the previous turn
GOAL_STEP_FACTOR = 0.1  # "easier" / "harder" moves a goal by 10 %


@dataclass
class AskPlan:
    """What the offline coach answers: the message's own intent, or one resolved against the previous turn."""

    topics: list[str]
    wants_goal: bool
    goal: dict | None = None  # the previous turn's suggested goal this message is about
    new_value: float | None = None  # ... and the value it should change to
    follows_up: bool = False


def _goal_step(goal: dict, direction: int) -> float:
    """The goal one step easier (-1) or harder (+1): 10 %, rounded to the metric's usual step."""
    metric = goal["metric"]
    step = 5 if metric in _UNITS else 250 if metric in (GoalMetric.WATER_ML, GoalMetric.STEPS) else 0.5
    value = float(goal["value"]) * (1 + direction * GOAL_STEP_FACTOR)
    return max(round(value / step) * step, step)


def _number_in(message: str) -> float | None:
    match = _NUMBER_RE.search(message)
    if match is None:
        return None
    value = float(match.group(1).replace(",", ""))
    return value * 1000 if match.group(2) else value


def _turn_topics(turn: ConversationTurn) -> list[str]:
    """The topics a stored turn was about: as recorded, else from its message, else from its goal."""
    known = {name for name, _ in _TOPICS}
    topics = [t for t in turn.topics if t in known] or intents_detect(turn.message)[0]
    if not topics and turn.suggested_goal and turn.suggested_goal.get("metric") in _METRIC_TOPIC:
        topics = [_METRIC_TOPIC[turn.suggested_goal["metric"]]]
    return topics


def _goal_in_discussion(history: list[ConversationTurn]) -> dict | None:
    """The goal the conversation is still about: the latest one suggested, as long as the turns since
    were about its topic ("is that realistic?" then "make it easier" still mean that goal)."""
    for index in range(len(history) - 1, -1, -1):
        goal = history[index].suggested_goal
        if goal and goal.get("metric") in _METRIC_TOPIC:
            topic = _METRIC_TOPIC[goal["metric"]]
            later = [t for turn in history[index + 1 :] for t in _turn_topics(turn)]
            return goal if all(t == topic for t in later) else None
    return None


def ask_plan_resolve(message: str, history: list[ConversationTurn]) -> AskPlan:
    """The message's intent; a follow-up takes what it leaves out from the previous turn.

    - "make it 110", "can that goal be lower?": the previous turn's suggested goal, at the new value
      (a number, or 10 % easier / harder);
    - "what about carbs?", "carbs instead": the new topic, asked the way the previous turn asked
      (a goal if the previous turn suggested one);
    - "is that realistic?", "why?": the previous turn's topics (and its goal).
    """
    topics, wants_goal = intents_detect(message)
    if not history or _ACKNOWLEDGEMENT_RE.search(message):
        return AskPlan(topics, wants_goal)
    previous_topics = _turn_topics(history[-1])
    goal = _goal_in_discussion(history)
    own = [t for t in topics if t in _TOPIC_METRIC]
    short = len(message.split()) <= SHORT_FOLLOW_UP_WORDS
    refers_back = bool(_BACK_REFERENCE_RE.search(message)) or short
    if goal is not None and (not own or own == [_METRIC_TOPIC[goal["metric"]]]):
        number = _number_in(message)
        goal_topic = [_METRIC_TOPIC[goal["metric"]]]
        if number is not None and (_CHANGE_RE.search(message) or refers_back):
            return AskPlan(goal_topic, True, goal=goal, new_value=number, follows_up=True)
        if refers_back and (_EASIER_RE.search(message) or _HARDER_RE.search(message)):
            direction = -1 if _EASIER_RE.search(message) else 1
            return AskPlan(goal_topic, True, goal=goal, new_value=_goal_step(goal, direction), follows_up=True)
    if topics and _TOPIC_SWITCH_RE.search(message) and not wants_goal:
        return AskPlan(topics, goal is not None, follows_up=True)
    if not topics and previous_topics and refers_back:
        return AskPlan(previous_topics, False, goal=goal, follows_up=True)
    return AskPlan(topics, wants_goal)


class OfflineCoach:
    """A deterministic planner: recognises the intent, calls the tools, writes a grounded answer."""

    name = "offline"

    def answer(
        self,
        *,
        ctx: ToolContext,
        message: str,
        facts: dict,
        retrieved: list[RetrievedItem],
        history: list[ConversationTurn] | None = None,
    ) -> CoachAnswer:
        plan = ask_plan_resolve(message, history or [])
        topics, wants_goal = plan.topics, plan.wants_goal
        ctx.topics = [t for t in topics if t in _TOPIC_METRIC or t in ("overview", "motivation")]
        nutrition = [t for t in topics if t in _NUTRIENT_KEY]
        other = [t for t in topics if t in ("water", "sleep", "exercise", "steps", "weight")]
        if plan.goal is not None and plan.new_value is not None:
            paragraphs = self._goal_change(ctx, plan.goal, plan.new_value, facts)
        elif plan.goal is not None:
            paragraphs = self._goal_explain(ctx, plan.goal, facts)
        elif nutrition:
            paragraphs = self._nutrition(ctx, nutrition, wants_goal, facts)
        elif other:
            paragraphs = self._lifestyle(ctx, other[0], wants_goal, facts)
        elif "motivation" in topics:
            paragraphs = self._motivation(ctx)
        elif "overview" in topics:
            paragraphs = self._overview(ctx, facts, promote=True)
        elif wants_goal:
            paragraphs = self._generic_goal(ctx, facts)
        else:
            paragraphs = self._overview(ctx, facts, promote=False)
        related = next((item for item in retrieved if item.similarity >= 0.5), None)
        if related is not None:
            kind = "log" if related.kind == "activity" else "conversation"
            paragraphs.append(f"Related from your history ({kind} of {related.date}): {related.text[:160]}")
        return CoachAnswer(text="\n\n".join(paragraphs), provider=self.name, model="offline-planner-1")

    # Each intent returns the answer's paragraphs; every number in them comes from a tool result.

    def _suggest(self, ctx: ToolContext, metric: str, averages: dict, facts: dict, why: str) -> tuple[str, dict | None]:
        target = goal_target_suggest(metric=metric, averages=averages, facts=facts)
        if target is None:
            return "", None
        outcome = registry.call(
            ctx,
            "suggest_goal",
            {
                "goal_type": target.goal_type,
                "metric": target.metric,
                "value": target.value,
                "unit": target.unit,
                "rationale": f"{why} Rule: {target.rule}.",
                "target_days": 28,
            },
        )
        if not outcome.ok:
            return f"I could not store a suggested goal: {outcome.result['error']}", None
        label, per = _METRIC_LABEL[metric]
        verb = "I've added" if outcome.result.get("created") else "You already have"
        text = (
            f"I suggest a {label} goal of {_num(target.value)} {per}. {verb} it as a suggested goal: "
            f"accept it in the app to start tracking it. {_TIPS[metric]}"
        )
        return text, {"metric": metric, "value": target.value, "unit": target.unit, "rule": target.rule}

    def _insight(self, ctx: ToolContext, *, title: str, body: str, recommendation: str, insight_type: str) -> None:
        registry.call(
            ctx,
            "create_ai_insight",
            {"title": title, "body": body, "recommendation": recommendation, "insight_type": insight_type},
        )

    def _nutrition(self, ctx: ToolContext, topics: list[str], wants_goal: bool, facts: dict) -> list[str]:
        summary = registry.call(ctx, "get_user_nutrition_summary", {"days": 7}).result
        averages, logged = summary["averagesPerLoggedDay"], summary["daysLogged"]
        if not logged:
            lines = ["You have not logged any food in the last 7 days, so I cannot see your intake yet."]
        else:
            parts = [f"{_num(averages[_NUTRIENT_KEY[t]], _UNITS[_NUTRIENT_KEY[t]])} of {t}" for t in topics]
            lines = [
                f"Over the last 7 days you averaged {', '.join(parts)} per logged day ({logged} of 7 days logged)."
            ]
        if wants_goal:
            metric = _TOPIC_METRIC[topics[0]]
            current = averages.get(_NUTRIENT_KEY[topics[0]])
            why = f"7-day average {_num(current, _UNITS[metric])}." if current is not None else "No recent logs."
            text, target = self._suggest(ctx, metric, averages, facts, why)
            if target:
                weight = facts.get("currentWeightKg")
                if metric == GoalMetric.PROTEIN_G and weight:
                    per_kg = target["value"] / weight
                    text += f" That is {per_kg:.1f} g per kg of your {_num(weight, 'kg')} body weight."
                label = _METRIC_LABEL[metric][0]
                self._insight(
                    ctx,
                    title=f"Raise your {label} to {_num(target['value'], target['unit'])} a day"
                    if current is None or target["value"] >= current
                    else f"Bring your {label} to {_num(target['value'], target['unit'])} a day",
                    body=f"Your 7-day {label} average is {_num(current, target['unit'])} per logged day "
                    f"({logged} of 7 days logged); the suggested target is {_num(target['value'], target['unit'])}.",
                    recommendation=_TIPS[metric],
                    insight_type="nutrition",
                )
            lines.append(text)
        else:
            goals = registry.call(ctx, "get_user_goals", {"status": "active"}).result["goals"]
            for topic in topics:
                key = _NUTRIENT_KEY[topic]
                goal = next((g for g in goals if g["metric"] == key), None)
                if goal and averages.get(key) is not None:
                    pct = 100 * averages[key] / goal["value"]
                    lines.append(
                        f"Your {topic} goal is {_num(goal['value'], goal['unit'])} a day: you are at {pct:.0f} % of it."
                    )
            lines.append(_TIPS[_TOPIC_METRIC[topics[0]]])
        return lines

    def _lifestyle(self, ctx: ToolContext, topic: str, wants_goal: bool, facts: dict) -> list[str]:
        metric = _TOPIC_METRIC[topic]
        goals = registry.call(ctx, "get_user_goals", {"status": "active"}).result["goals"]
        goal = next((g for g in goals if g["metric"] == metric), None)
        if topic == "water":
            current, days = facts["waterMlPerLoggedDay"], facts["waterDaysLogged"]
            line = (
                f"You logged water on {days} of the last 7 days, {_num(current, 'ml')} per logged day."
                if days
                else "You have not logged water in the last 7 days."
            )
        elif topic == "sleep":
            current, days = facts["sleepHoursPerLoggedNight"], facts["sleepNightsLogged"]
            line = (
                f"You logged {days} nights in the last week, {_num(current, 'hours')} a night on average."
                if days
                else "You have not logged sleep in the last 7 days."
            )
        elif topic == "exercise":
            current = facts["exerciseMinutesPerDay"]
            line = (
                f"You exercised on {facts['exerciseDays']} of the last 7 days, "
                f"{_num(current, 'minutes')} a day on average."
            )
        elif topic == "steps":
            current = facts["stepsPerLoggedDay"]
            line = (
                f"You average {_num(current, 'steps')} on the days you logged steps."
                if current
                else "You have not logged steps in the last 7 days."
            )
        else:
            trend = facts["weightTrend30d"]
            current = facts["currentWeightKg"]
            line = (
                f"In the last 30 days you weighed in {trend['weighIns']} times: from {_num(trend['firstKg'], 'kg')} "
                f"({trend['firstDate']}) to {_num(trend['lastKg'], 'kg')} ({trend['lastDate']}), "
                f"a change of {trend['changeKg']:+.1f} kg."
                if trend
                else f"You have no weigh-ins in the last 30 days; your profile says {_num(current, 'kg')}."
            )
        lines = [line]
        if goal:
            lines.append(
                f"Your active {topic} goal is {_num(goal['value'], goal['unit'])} "
                f"({goal['progressPct']:.0f} % progress, {goal['streakDays']}-day streak)."
            )
        if wants_goal and not goal:
            text, target = self._suggest(ctx, metric, {}, facts, f"Current: {_num(current)}.")
            if target:
                label = _METRIC_LABEL[metric][0]
                self._insight(
                    ctx,
                    title=f"A {label} goal of {_num(target['value'], target['unit'])}",
                    body=f"{line} Suggested target: {_num(target['value'], target['unit'])}.",
                    recommendation=_TIPS[metric],
                    insight_type=_INSIGHT_TYPE.get(metric, "general"),
                )
            lines.append(text or "I have no target rule for this without more data.")
        else:
            lines.append(_TIPS[metric])
        return lines

    def _goal_current(self, ctx: ToolContext, metric: str, facts: dict) -> tuple[float | None, str]:
        """The 7-day number a goal is compared with, and how many days it covers (a tool call for food)."""
        if metric in _UNITS:
            summary = registry.call(ctx, "get_user_nutrition_summary", {"days": 7}).result
            averages, logged = summary["averagesPerLoggedDay"], summary["daysLogged"]
            return averages.get(metric), _goal_days(metric, logged, facts)
        if metric == GoalMetric.WEIGHT_KG:
            return facts.get("currentWeightKg"), "your profile weight"
        return _goal_current(metric, {}, facts), _goal_days(metric, 0, facts)

    @staticmethod
    def _compare(label: str, value: float, current: float | None, unit: str, days: str) -> str:
        if current is None:
            return f"I have no recent {label} logs to compare it with."
        diff = value - current
        more_or_less = "more" if diff > 0 else "less"
        relation = "the same as" if abs(diff) < 1e-9 else f"{_num(abs(diff), unit)} {more_or_less} than"
        return f"Your 7-day average is {_num(current, unit)} ({days}), so that is {relation} what you do now."

    def _goal_change(self, ctx: ToolContext, goal: dict, value: float, facts: dict) -> list[str]:
        """A follow-up changes the goal the previous turn suggested (suggest_goal updates the open one)."""
        metric = goal["metric"]
        label, per = _METRIC_LABEL[metric]
        unit = goal.get("unit") or _METRIC_GOAL_TYPE[metric][1]
        current, days = self._goal_current(ctx, metric, facts)
        outcome = registry.call(
            ctx,
            "suggest_goal",
            {
                "goal_type": goal.get("goalType") or _METRIC_GOAL_TYPE[metric][0],
                "metric": metric,
                "value": value,
                "unit": unit,
                "rationale": f"Changed at the user's request in the conversation (was {_num(goal['value'], unit)}).",
                "target_days": 28,
            },
        )
        if not outcome.ok:
            return [f"I could not change the {label} goal to {_num(value, unit)}: {outcome.result['error']}"]
        result = outcome.result
        if result.get("updated"):
            head = (
                f"Done: I've changed your suggested {label} goal from {_num(result['previousValue'])} "
                f"to {_num(result['goal']['value'])} {per}."
            )
        elif result.get("alreadySuggested"):
            head = f"Your suggested {label} goal is already {_num(result['goal']['value'])} {per}."
        else:
            head = f"I've added a {label} goal of {_num(result['goal']['value'])} {per} as a suggested goal."
        lines = [head, self._compare(label, result["goal"]["value"], current, unit, days)]
        lines.append("Accept it in the app to start tracking it.")
        return lines

    def _goal_explain(self, ctx: ToolContext, goal: dict, facts: dict) -> list[str]:
        """A question about the goal the previous turn suggested ("is that realistic?")."""
        metric = goal["metric"]
        label, per = _METRIC_LABEL[metric]
        unit = goal.get("unit") or _METRIC_GOAL_TYPE[metric][1]
        current, days = self._goal_current(ctx, metric, facts)
        lines = [f"The {label} goal I suggested is {_num(goal['value'])} {per}."]
        lines.append(self._compare(label, goal["value"], current, unit, days))
        if current and goal["value"] > current * 1.3:
            lines.append(f"That is a big step: ask me to make it easier, or try {_num(_goal_step(goal, -1))} first.")
        lines.append(_TIPS[metric])
        return lines

    def _motivation(self, ctx: ToolContext) -> list[str]:
        goals = registry.call(ctx, "get_user_goals", {"status": "active"}).result["goals"]
        churn = registry.call(ctx, "estimate_churn_risk", {}).result
        factors = churn["factors"]
        lines = [
            f"You logged {factors['activities7d']} activities in the last 7 days and were active on "
            f"{factors['activeDays14d']} of the last 14 days. Progress is built on exactly these small days."
        ]
        best = max(goals, key=lambda g: g["streakDays"], default=None)
        if best and best["streakDays"]:
            label = best["metric"].replace("_", " ")
            lines.append(f"Your {label} goal has a {best['streakDays']}-day streak: protect it today.")
        actions = churn["retentionActions"] or ["Pick one small thing you can do in the next hour and log it."]
        lines.append(actions[0])
        return lines

    def _overview(self, ctx: ToolContext, facts: dict, *, promote: bool) -> list[str]:
        summary = registry.call(ctx, "get_user_nutrition_summary", {"days": 7}).result
        goals = registry.call(ctx, "get_user_goals", {"status": "active"}).result["goals"]
        averages = summary["averagesPerLoggedDay"]
        lines = []
        if summary["daysLogged"]:
            lines.append(
                f"In the last 7 days you logged food on {summary['daysLogged']} days, averaging "
                f"{_num(averages['calories_kcal'], 'kcal')} and {_num(averages['protein_g'], 'g')} protein a day."
            )
        else:
            lines.append("You have not logged food in the last 7 days.")
        for goal in goals[:3]:
            lines.append(
                f"{goal['metric'].replace('_', ' ').capitalize()} goal {_num(goal['value'], goal['unit'])}: "
                f"{goal['progressPct']:.0f} % progress, {goal['streakDays']}-day streak."
            )
        if promote:
            churn = registry.call(ctx, "estimate_churn_risk", {}).result
            lines.append(
                f"Activity: {churn['factors']['activities7d']} logs this week, active "
                f"{churn['factors']['activeDays14d']} of 14 days."
            )
            tiers = ["bronze", "silver", "gold", "platinum"]
            current, justified = churn["engagementTier"], churn["engagementTierJustified"]
            if tiers.index(justified) > tiers.index(current):
                step = tiers[tiers.index(current) + 1]
                if registry.call(ctx, "update_engagement_tier", {"tier": step}).ok:
                    lines.append(f"Your consistency moved you up from {current} to {step}. Well done!")
        if not goals:
            lines.append("You have no active goals yet: ask me to help you set one.")
        return lines

    def _generic_goal(self, ctx: ToolContext, facts: dict) -> list[str]:
        summary = registry.call(ctx, "get_user_nutrition_summary", {"days": 7}).result
        goals = registry.call(ctx, "get_user_goals", {"status": "active"}).result["goals"]
        taken = {g["metric"] for g in goals}
        preferred = _PRIMARY_GOAL_METRIC.get(facts.get("primaryGoal"), GoalMetric.WATER_ML)
        candidates = [preferred, GoalMetric.PROTEIN_G, GoalMetric.WATER_ML, GoalMetric.EXERCISE_MINUTES]
        metric = next((m for m in candidates if m not in taken), None)
        if metric is None:
            return ["You already have active goals for nutrition, water and exercise: let's keep those on track."]
        averages = summary["averagesPerLoggedDay"]
        text, target = self._suggest(ctx, metric, averages, facts, f"Primary goal: {facts.get('primaryGoal')}.")
        if target:
            label = _METRIC_LABEL[metric][0]
            self._insight(
                ctx,
                title=f"A {label} goal to start with",
                body=f"Based on your profile and last week, {_num(target['value'], target['unit'])} a day fits you.",
                recommendation=_TIPS[metric],
                insight_type=_INSIGHT_TYPE.get(metric, "nutrition"),
            )
        return [text]

    # --- Jobs: the daily insight and the weekly retention action, written from the numbers given ---

    def daily_insight(self, *, facts: dict, summary: dict) -> InsightDraft:
        nutrition = summary["nutrition"]
        averages, logged = nutrition["averagesPerLoggedDay"], nutrition["daysLogged"]
        gaps = []
        for goal in summary["goals"]:
            current = _goal_current(goal["metric"], averages, facts)
            if current is not None and goal["value"] and goal["metric"] != GoalMetric.WEIGHT_KG:
                gaps.append((abs(current - goal["value"]) / goal["value"], goal, current))
        if gaps:
            gap, goal, current = max(gaps, key=lambda item: item[0])
            metric = GoalMetric(goal["metric"])
            label, per = _METRIC_LABEL[metric]
            target = goal["value"]
            if gap <= DAILY_ON_TRACK:
                title = f"Your {label} is on track"
                advice = f"Keep doing what works: you are within {DAILY_ON_TRACK:.0%} of your goal."
            elif current < target:
                title = f"Your {label} is below your goal"
                advice = _TIPS[metric]
            else:
                title = f"Your {label} is above your goal"
                advice = (
                    f"Swap one snack a day to bring {label} back toward {_num(target)} {per}."
                    if metric in _UNITS
                    else f"Well done: you are past your {label} goal. Keep it steady."
                )
            return InsightDraft(
                title=title,
                body=f"Over the last 7 days your {label} averaged {_num(current)} {per} against a goal of "
                f"{_num(target)} {per} ({_goal_days(metric, logged, facts)}).",
                recommendation=advice,
                insight_type="nutrition" if metric in _UNITS else _INSIGHT_TYPE.get(metric, "general"),
                provider=self.name,
                model="offline-planner-1",
            )
        metric = _PRIMARY_GOAL_METRIC.get(facts.get("primaryGoal"), GoalMetric.PROTEIN_G)
        target = goal_target_suggest(metric=metric, averages=averages, facts=facts)
        label, per = _METRIC_LABEL[metric]
        if logged:
            body = (
                f"You logged food on {logged} of the last 7 days: about {_num(averages['calories_kcal'], 'kcal')} "
                f"and {_num(averages['protein_g'], 'g')} of protein per logged day."
            )
            insight_type = "nutrition"
            title = "Your week in food"
        else:
            body = (
                f"No food logs this week, but you logged water on {facts['waterDaysLogged']} days, "
                f"sleep on {facts['sleepNightsLogged']} nights and exercised on {facts['exerciseDays']} days."
            )
            insight_type = "general"
            title = "Your week so far"
        recommendation = (
            f"Set a {label} goal of {_num(target.value)} {per} with your coach so you can track it. {_TIPS[metric]}"
            if target
            else _TIPS[metric]
        )
        if not logged:
            recommendation = f"Log one meal a day so your coach can see your nutrition. {recommendation}"
        return InsightDraft(
            title=title,
            body=body,
            recommendation=recommendation,
            insight_type=insight_type,
            provider=self.name,
            model="offline-planner-1",
        )

    def retention_action(self, *, facts: dict, churn: dict, goals: list[dict], allowed: list[str]) -> RetentionProposal:
        action = retention_action_for_drivers(
            churn=churn, goals=goals, tier=facts.get("engagementTier"), allowed=allowed
        )
        days = int(churn.get("daysInactive") or 0)
        since = f"It has been {days} days since your last log" if days else "We have not seen you for a while"
        if action == RetentionActionType.EASIER_GOAL:
            goal = min(goals, key=lambda g: g["progressPct"]) if goals else None
            if goal:
                label, per = _METRIC_LABEL.get(goal["metric"], (goal["metric"].replace("_", " "), goal["unit"]))
                easier = _easier_value(goal)
                text = (
                    f"Your {label} goal of {_num(goal['value'])} {per} is at {goal['progressPct']:.0f} %. "
                    f"A smaller step is easier to keep."
                )
                tip = f"Try {_num(easier)} {per} for the next two weeks, then build up again."
            else:
                text, tip = "Big goals can feel far away.", "Pick one small daily target, such as one glass of water."
            title = "A smaller goal to get going again"
        elif action == RetentionActionType.STREAK_RESTART:
            title = "Start a new streak today"
            text = f"{since}. Every streak starts with day one."
            tip = "Log one thing today (a glass of water counts) and again tomorrow."
        elif action == RetentionActionType.REMINDER:
            title = "A daily reminder to log"
            text = f"{since}. A reminder at the time you usually log makes it easier to keep going."
            tip = "We will send you one reminder a day for the next week; log one meal or one glass of water."
        else:
            title = "Our team would like to help"
            text = f"{since}. A member of our team will get in touch to help you find a plan that fits."
            tip = "Tell us what got in the way: we will adjust your goals with you."
        return RetentionProposal(
            action_type=action,
            title=title,
            body=text,
            recommendation=tip,
            provider=self.name,
            model="offline-planner-1",
        )


DAILY_ON_TRACK = 0.05  # within 5 % of the goal counts as on track
_FACT_KEY = {
    GoalMetric.WATER_ML: "waterMlPerLoggedDay",
    GoalMetric.SLEEP_HOURS: "sleepHoursPerLoggedNight",
    GoalMetric.EXERCISE_MINUTES: "exerciseMinutesPerDay",
    GoalMetric.STEPS: "stepsPerLoggedDay",
}
EASIER_GOAL_FACTOR = 0.75  # an easier goal is 75 % of the current one


def _goal_current(metric: str, averages: dict, facts: dict) -> float | None:
    """The 7-day number a goal's metric is compared with (nutrients: per logged day; habits: facts)."""
    if metric in _UNITS:
        return averages.get(metric)
    key = _FACT_KEY.get(metric)
    return facts.get(key) if key else None


def _goal_days(metric: str, logged: int, facts: dict) -> str:
    if metric in _UNITS:
        return f"{logged} of 7 days logged"
    if metric == GoalMetric.SLEEP_HOURS:
        return f"{facts['sleepNightsLogged']} of 7 nights logged"
    if metric == GoalMetric.WATER_ML:
        return f"{facts['waterDaysLogged']} of 7 days logged"
    return f"{facts.get('exerciseDays', 0)} active days of 7"


def _easier_value(goal: dict) -> float:
    step = 5 if goal["metric"] in _UNITS else 250 if goal["metric"] == GoalMetric.WATER_ML else 1
    return max(round(goal["value"] * EASIER_GOAL_FACTOR / step) * step, step)


# Which action answers which driver: the churn model's features named by what they measure.
_DRIVER_ACTIONS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"goal", re.I), RetentionActionType.EASIER_GOAL),
    (re.compile(r"(recen|inactiv|since|gap|streak|tenure)", re.I), RetentionActionType.STREAK_RESTART),
    (re.compile(r"(frequen|trend|activit|volume|active_?days|regular|coach)", re.I), RetentionActionType.REMINDER),
]
STAFF_CALL_TIERS = ("gold", "platinum")


def retention_action_for_drivers(*, churn: dict, goals: list[dict], tier: str | None, allowed: list[str]) -> str:
    """The offline coach's choice among `allowed` (non-empty; ordered by preference of the caller).

    A high-band user of a gold or platinum tier gets a staff call (worth a person's time); else the
    strongest driver that pushes the risk up decides (goal progress: an easier goal; recency, gaps,
    streaks: a streak restart; frequency and trend: a reminder); without drivers, a user with active
    goals gets an easier goal and anyone else a streak restart. An action that is not allowed falls
    through to the in-app ones.
    """
    if churn.get("band") == "high" and tier in STAFF_CALL_TIERS and RetentionActionType.STAFF_CALL in allowed:
        return RetentionActionType.STAFF_CALL
    wanted: list[str] = []
    for driver in churn.get("drivers") or []:
        if not isinstance(driver, dict) or (driver.get("contribution") or 0) <= 0:
            continue
        name = f"{driver.get('feature', '')} {driver.get('label', '')}"
        wanted += [action for pattern, action in _DRIVER_ACTIONS if pattern.search(name)][:1]
    wanted += [RetentionActionType.EASIER_GOAL] if goals else []
    wanted += [RetentionActionType.STREAK_RESTART]
    if RetentionActionType.EASIER_GOAL in wanted and not goals:
        wanted = [a for a in wanted if a != RetentionActionType.EASIER_GOAL]
    return next((action for action in wanted if action in allowed), allowed[0])


# --- OpenAI -------------------------------------------------------------------------------------------

SYSTEM_PROMPT = """You are the YAHealthy nutrition and habit coach. Be warm, concrete and brief
(at most 180 words). Ground every number in tool results or the facts below; never invent data.
Use the tools to read the user's data and to act: suggest goals with suggest_goal (the user accepts
them in the app), store at most one insight with create_ai_insight. You never need identifiers: the
user is fixed by the server and tools take no user id. Do not give medical diagnoses.
Earlier turns of this conversation come before the new question: resolve "that goal", "instead" or
"what about carbs?" against them. To change a goal you suggested, call suggest_goal again with the
new value: it updates the open suggestion instead of adding a second one."""


@functools.lru_cache(maxsize=4)
def openai_client_get(api_key: str, base_url: str, timeout_s: float):
    """One client per configuration: building one costs ~60 ms (TLS context, connection pool)."""
    from openai import OpenAI  # lazily: importing openai costs ~0.4 s and the offline default never needs it

    # Retries are ours (OpenAICoach._create) so they respect the ask's total time budget.
    return OpenAI(api_key=api_key or "not-needed", base_url=base_url or None, max_retries=0, timeout=timeout_s)


class OpenAICoach:
    """Chat completions with tools against any OpenAI-compatible server (OPENAI_BASE_URL)."""

    name = "openai"

    def __init__(self) -> None:
        self.model = settings.OPENAI_MODEL
        self.client = openai_client_get(settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL, settings.COACH_TIMEOUT_S)

    def _create(self, *, deadline: float, **kwargs):
        import openai  # lazily, as in openai_client_get (only the openai provider gets here)

        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                raise CoachUnavailableError("timeout", "time budget used up")
            try:
                return self.client.chat.completions.create(timeout=remaining, **kwargs)
            except openai.APITimeoutError as exc:
                raise CoachUnavailableError("timeout", str(exc)) from exc
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
                status = getattr(exc, "status_code", None)
                reason = "rate_limited" if status == 429 else "model_error"
                if attempt >= settings.COACH_MAX_RETRIES:
                    raise CoachUnavailableError(reason, str(exc)) from exc
                delay = settings.COACH_RETRY_BACKOFF_S * 2**attempt
                retry_after = getattr(getattr(exc, "response", None), "headers", {}).get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    delay = max(delay, float(retry_after))
                if time.monotonic() + delay >= deadline:
                    raise CoachUnavailableError(reason, str(exc)) from exc
                time.sleep(delay)
                attempt += 1
            except openai.APIError as exc:
                raise CoachUnavailableError("model_error", str(exc)) from exc

    def answer(
        self,
        *,
        ctx: ToolContext,
        message: str,
        facts: dict,
        retrieved: list[RetrievedItem],
        history: list[ConversationTurn] | None = None,
    ) -> CoachAnswer:
        deadline = time.monotonic() + settings.COACH_TIMEOUT_S
        history = history or []
        context = {
            "facts": facts,
            "relevantHistory": [{"kind": i.kind, "date": i.date, "text": i.text} for i in retrieved],
            "today": ctx.today.isoformat(),
        }
        goals = [turn.suggested_goal for turn in history if turn.suggested_goal]
        if goals:
            context["goalsSuggestedInThisConversation"] = goals
        messages: list[dict] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "system", "content": "Context (aggregates only):\n" + json.dumps(context, default=str)},
        ]
        # The conversation so far (redacted as stored, oldest first), then the new question.
        for turn in history:
            messages.append({"role": "user", "content": turn.message})
            messages.append({"role": "assistant", "content": turn.response})
        messages.append({"role": "user", "content": message})
        result = CoachAnswer(text="", provider=self.name, model=self.model)
        for round_number in range(1, MAX_ROUNDS + 1):
            last = round_number == MAX_ROUNDS
            waited = time.perf_counter()
            response = self._create(
                deadline=deadline,
                model=self.model,
                messages=messages,
                tools=registry.openai_schemas(),
                tool_choice="none" if last else "auto",
                parallel_tool_calls=True,
            )
            result.rounds = round_number
            result.model_seconds += time.perf_counter() - waited
            if response.usage is not None:
                result.prompt_tokens += response.usage.prompt_tokens or 0
                result.completion_tokens += response.usage.completion_tokens or 0
            if not response.choices:
                raise CoachUnavailableError("bad_response", "no choices")
            reply = response.choices[0].message
            result.model = response.model or self.model
            if not reply.tool_calls:
                if not (reply.content or "").strip():
                    raise CoachUnavailableError("bad_response", "empty answer")
                result.text = reply.content.strip()
                return result
            if last:
                raise CoachUnavailableError("round_limit", f"still calling tools after {MAX_ROUNDS} rounds")
            messages.append(
                {
                    "role": "assistant",
                    "content": reply.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.function.name, "arguments": call.function.arguments},
                        }
                        for call in reply.tool_calls
                    ],
                }
            )
            for call in reply.tool_calls:
                outcome = registry.call(ctx, call.function.name, call.function.arguments)
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(outcome.result, default=str)}
                )
        raise CoachUnavailableError("round_limit")  # unreachable: the last round returns or raises

    # --- Jobs: one JSON-mode request each; any failure raises CoachUnavailableError (offline takes over) ---

    def _json_answer(self, *, instructions: str, context: dict, keys: tuple[str, ...]) -> tuple[dict, str]:
        response = self._create(
            deadline=time.monotonic() + settings.COACH_TIMEOUT_S,
            model=self.model,
            messages=[
                {"role": "system", "content": instructions},
                {"role": "user", "content": "Data (aggregates only):\n" + json.dumps(context, default=str)},
            ],
            response_format={"type": "json_object"},
        )
        if not response.choices:
            raise CoachUnavailableError("bad_response", "no choices")
        try:
            data = json.loads(response.choices[0].message.content or "")
        except ValueError as exc:
            raise CoachUnavailableError("bad_response", "not JSON") from exc
        if not isinstance(data, dict) or any(not isinstance(data.get(k), str) or not data[k].strip() for k in keys):
            raise CoachUnavailableError("bad_response", f"expected string fields {', '.join(keys)}")
        return {k: data[k].strip() for k in keys}, response.model or self.model

    def daily_insight(self, *, facts: dict, summary: dict) -> InsightDraft:
        data, model = self._json_answer(
            instructions=DAILY_INSIGHT_PROMPT,
            context={"facts": facts, **summary},
            keys=("title", "body", "recommendation", "insight_type"),
        )
        insight_type = data["insight_type"] if data["insight_type"] in InsightType.values else "general"
        return InsightDraft(
            title=data["title"][:200],
            body=data["body"],
            recommendation=data["recommendation"],
            insight_type=insight_type,
            provider=self.name,
            model=model,
        )

    def retention_action(self, *, facts: dict, churn: dict, goals: list[dict], allowed: list[str]) -> RetentionProposal:
        data, model = self._json_answer(
            instructions=RETENTION_PROMPT.format(allowed=", ".join(allowed)),
            context={"facts": facts, "churn": churn, "goals": goals, "allowedActions": allowed},
            keys=("action_type", "title", "body", "recommendation"),
        )
        if data["action_type"] not in allowed:
            raise CoachUnavailableError("bad_response", f"action {data['action_type']!r} is not allowed")
        return RetentionProposal(
            action_type=data["action_type"],
            title=data["title"][:200],
            body=data["body"],
            recommendation=data["recommendation"],
            provider=self.name,
            model=model,
        )


DAILY_INSIGHT_PROMPT = """You are the YAHealthy nutrition and habit coach writing today's insight for one
user from the numbers below (the last 7 days, active goals with progress). Answer with a JSON object:
{"title": at most 80 characters, "body": one or two sentences quoting the user's real numbers,
"recommendation": one concrete action for tomorrow, "insight_type": one of nutrition, activity,
hydration, sleep, weight, engagement, general}. Never invent numbers; no medical diagnoses."""

RETENTION_PROMPT = """You are the YAHealthy coach. The user below has been inactive and may stop using
the app. Choose exactly ONE retention action from: {allowed}, fitted to the churn drivers (the
features pushing the risk up, largest first), and write the in-app message. Action types:
easier_goal (lower an active goal the user is far from), streak_restart (start again with one small
log today), reminder (a daily reminder outside the app), staff_call (a person from our team calls).
Answer with a JSON object: {{"action_type", "title" (at most 80 characters), "body" (one or two warm
sentences quoting the real numbers), "recommendation" (one small concrete step)}}. Never invent numbers."""


def coach_provider_get() -> CoachProvider:
    """COACH_PROVIDER: `openai`, `offline`, or `auto` (the default: openai when OPENAI_API_KEY is set)."""
    choice = settings.COACH_PROVIDER
    if choice == "auto":
        choice = "openai" if settings.OPENAI_API_KEY else "offline"
    return OpenAICoach() if choice == "openai" else OfflineCoach()
