"""Reads of the coaching app: the facts the coach reasons over, goal-target rules, insights, sessions,
and semantic retrieval of a user's past activities and coaching sessions."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from activities.models import UserActivity
from activities.selectors import activity_text, daily_totals_get, vector_search_by_user, weight_trend_get
from coaching.models import AiInsight, CoachingConversation, CoachingSession
from compliance.pii import redact_pii
from goals.models import GoalMetric
from profiles.models import CrmUserProfile

# --- Facts ------------------------------------------------------------------------------------------


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def coach_facts_get(*, profile: CrmUserProfile, today: dt.date | None = None, days: int = 7) -> dict:
    """Aggregates the coach may see: profile basics, the week's water/sleep/exercise/steps, weight trend.

    No identifiers: no user id, email, phone or name, only numbers and categories.
    """
    today = today or timezone.localdate()
    totals = daily_totals_get(user_id=profile.user_id, start=today - dt.timedelta(days=days - 1), end=today)

    def logged(column: str) -> list[float]:
        return [float(row[column]) for row in totals.values() if row[column]]

    exercise = logged("exercise_minutes")
    return {
        "age": profile.age,
        "heightCm": float(profile.height_cm) if profile.height_cm is not None else None,
        "currentWeightKg": float(profile.current_weight_kg) if profile.current_weight_kg is not None else None,
        "activityLevel": profile.activity_level,
        "primaryGoal": profile.primary_goal,
        "engagementTier": profile.engagement_tier,
        "days": days,
        "waterMlPerLoggedDay": _avg(logged("water_ml")),
        "waterDaysLogged": len(logged("water_ml")),
        "sleepHoursPerLoggedNight": _avg(logged("sleep_hours")),
        "sleepNightsLogged": len(logged("sleep_hours")),
        "exerciseMinutesPerDay": round(sum(exercise) / days, 1),
        "exerciseDays": len(exercise),
        "stepsPerLoggedDay": _avg(logged("steps")),
        "weightTrend30d": weight_trend_get(user_id=profile.user_id, days=30, today=today),
    }


# --- Goal targets -------------------------------------------------------------------------------------
# The rules the offline coach uses to propose a target (docs/coach.md "Goal targets"). They start from
# what the user does now and from body weight, and move in steps a person can keep.

PROTEIN_G_PER_KG = 1.6  # a common evidence-based floor for active adults
PROTEIN_G_PER_KG_CAP = 2.2
PROTEIN_INCREASE = 1.5  # at most +50 % of the current intake in one goal
PROTEIN_CAP_G = 220
WATER_ML_PER_KG = 35


def _round_to(value: float, step: float) -> float:
    """Round half up to a multiple of `step` (Python's round() would send 2625 ml to 2500, not 2750)."""
    return math.floor(value / step + 0.5) * step


@dataclass(frozen=True)
class TargetSuggestion:
    goal_type: str
    metric: str
    value: float
    unit: str
    rule: str


def goal_target_suggest(*, metric: str, averages: dict, facts: dict) -> TargetSuggestion | None:
    """A target for `metric` from the user's 7-day averages (nutrition) and facts (everything else)."""
    weight = facts.get("currentWeightKg")
    primary = facts.get("primaryGoal")
    if metric == GoalMetric.PROTEIN_G:
        current = averages.get("protein_g")
        base = max((current or 0) * PROTEIN_INCREASE, PROTEIN_G_PER_KG * weight if weight else 0) or 100
        cap = min(PROTEIN_G_PER_KG_CAP * weight, PROTEIN_CAP_G) if weight else PROTEIN_CAP_G
        value = max(_round_to(min(base, cap), 5), 50)
        rule = "max(7-day average x 1.5, 1.6 g/kg body weight), capped at 2.2 g/kg and 220 g, rounded to 5 g"
        return TargetSuggestion("nutrition", metric, value, "g", rule)
    if metric == GoalMetric.CALORIES_KCAL:
        current = averages.get("calories_kcal") or 2000
        factor = {"weight_loss": 0.9, "muscle_gain": 1.1}.get(primary, 1.0)
        value = min(max(_round_to(current * factor, 50), 1200), 4000)
        rule = "7-day average (-10 % for weight loss, +10 % for muscle gain), 1200-4000 kcal, rounded to 50"
        return TargetSuggestion("nutrition", metric, value, "kcal", rule)
    if metric in (GoalMetric.CARBS_G, GoalMetric.FAT_G):
        current = averages.get(metric) or (250 if metric == GoalMetric.CARBS_G else 70)
        factor = 0.9 if primary == "weight_loss" else 1.0
        value = max(_round_to(current * factor, 5), 20)
        return TargetSuggestion("nutrition", metric, value, "g", "7-day average (-10 % for weight loss), rounded to 5")
    if metric == GoalMetric.WATER_ML:
        body = WATER_ML_PER_KG * weight if weight else 2000
        current = facts.get("waterMlPerLoggedDay") or 0
        value = min(max(_round_to(max(body, current + 250), 250), 1500), 4000)
        return TargetSuggestion("water", metric, value, "ml", "35 ml/kg body weight, rounded to 250 ml")
    if metric == GoalMetric.SLEEP_HOURS:
        current = facts.get("sleepHoursPerLoggedNight") or 0
        value = 8.0 if current < 7.5 else min(_round_to(current, 0.5), 9.0)
        return TargetSuggestion("sleep", metric, value, "h", "8 hours, or the current average when already >= 7.5")
    if metric == GoalMetric.EXERCISE_MINUTES:
        current = facts.get("exerciseMinutesPerDay") or 0
        value = min(max(_round_to(current + 10, 5), 30), 90)
        return TargetSuggestion("activity", metric, value, "min", "daily average + 10 minutes, 30-90 min")
    if metric == GoalMetric.STEPS:
        current = facts.get("stepsPerLoggedDay") or 0
        value = min(max(_round_to(current + 1000, 500), 7000), 15000)
        return TargetSuggestion("activity", metric, value, "steps", "daily average + 1000 steps, 7000-15000")
    if metric == GoalMetric.WEIGHT_KG and weight:
        factor = {"weight_loss": 0.95, "muscle_gain": 1.03}.get(primary)
        if factor is None:
            return None
        return TargetSuggestion(
            "weight", metric, _round_to(weight * factor, 0.5), "kg", "-5 % (weight loss) or +3 % (muscle gain)"
        )
    return None


# --- Insights and sessions ------------------------------------------------------------------------


def insight_list_open(*, user_id: str) -> QuerySet[AiInsight]:
    """A user's insights that are not dismissed, newest first."""
    return AiInsight.objects.filter(user_id=user_id, dismissed_at__isnull=True).order_by("-created_at", "-id")


def insight_get_for_user(*, user_id: str, insight_id: int) -> AiInsight | None:
    return AiInsight.objects.filter(user_id=user_id, pk=insight_id).first()


# --- Conversations ------------------------------------------------------------------------------------


def conversation_get_for_user(*, user_id: str, conversation_id: uuid.UUID | str) -> CoachingConversation | None:
    """The user's conversation with that id; None for an unknown id or another user's conversation."""
    return CoachingConversation.objects.filter(user_id=user_id, pk=conversation_id).first()


def conversation_list(*, user_id: str, conversation_id: uuid.UUID | None = None) -> QuerySet[CoachingConversation]:
    """A user's conversations, most recent turn first, each with its turns (oldest first) prefetched."""
    turns = CoachingSession.objects.defer("embedding").order_by("created_at", "id")
    conversations = CoachingConversation.objects.filter(user_id=user_id)
    if conversation_id is not None:
        conversations = conversations.filter(pk=conversation_id)
    return conversations.order_by("-last_turn_at", "-created_at").prefetch_related(Prefetch("turns", queryset=turns))


CHARS_PER_TOKEN = 4  # the usual estimate for English text with OpenAI's tokenizers
HISTORY_TURNS_READ = 20  # never read more than this many turns, whatever the budget


def tokens_estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class ConversationTurn:
    """An earlier question and answer of the conversation, as stored (PII-redacted)."""

    message: str
    response: str
    topics: tuple[str, ...]
    suggested_goal: dict | None  # the last goal the turn suggested: goalType, metric, value, unit
    tokens: int


def _turn_suggested_goal(session: CoachingSession) -> dict | None:
    for call in reversed(session.tool_calls or []):
        arguments = call.get("arguments") or {}
        if call.get("name") == "suggest_goal" and call.get("ok") and "value" in arguments:
            return {
                "goalType": arguments.get("goal_type"),
                "metric": arguments.get("metric"),
                "value": arguments.get("value"),
                "unit": arguments.get("unit"),
            }
    return None


def conversation_turns_get(*, conversation_id: uuid.UUID, token_budget: int) -> list[ConversationTurn]:
    """The conversation's last turns, oldest first, within `token_budget` (the oldest are dropped first).

    The latest turn is always kept (a follow-up refers to it), its texts cut to the budget if needed.
    """
    sessions = (
        CoachingSession.objects.filter(conversation_id=conversation_id)
        .only("message", "response", "topics", "tool_calls", "created_at")
        .order_by("-created_at", "-id")[:HISTORY_TURNS_READ]
    )
    turns: list[ConversationTurn] = []
    used = 0
    for session in sessions:
        message, response = session.message, session.response
        tokens = tokens_estimate(message) + tokens_estimate(response)
        if used + tokens > token_budget:
            if turns:
                break
            keep = max(token_budget, 0) * CHARS_PER_TOKEN
            message = message[: keep // 2]
            response = response[: keep - len(message)]
            tokens = tokens_estimate(message) + tokens_estimate(response)
        used += tokens
        turns.append(
            ConversationTurn(message, response, tuple(session.topics or ()), _turn_suggested_goal(session), tokens)
        )
    return turns[::-1]


def coaching_session_text(session: CoachingSession) -> str:
    """The text a session is embedded from (already redacted when stored)."""
    return f"{session.message}\n{session.response}"


# --- Retrieval --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievedItem:
    kind: str  # "activity" | "session"
    date: str
    text: str
    similarity: float


def coach_context_retrieve(
    *,
    user_id: str,
    query_vector: list[float],
    activities: int = 5,
    sessions: int = 3,
    conversation_id: uuid.UUID | None = None,
) -> list[RetrievedItem]:
    """The user's past activities and coaching sessions nearest to the question (redacted texts).

    Sessions of `conversation_id` are left out: the coach already rereads that conversation's turns.
    """
    items: list[RetrievedItem] = []
    hits = vector_search_by_user(table="crm_user_activities", user_id=user_id, vector=query_vector, limit=activities)
    by_id = UserActivity.objects.defer("embedding").in_bulk([hit_id for hit_id, _ in hits])
    for hit_id, distance in hits:
        if hit_id in by_id:
            activity = by_id[hit_id]
            items.append(
                RetrievedItem(
                    "activity", activity.logged_date.isoformat(), redact_pii(activity_text(activity)), 1 - distance
                )
            )
    hits = vector_search_by_user(table="crm_coaching_sessions", user_id=user_id, vector=query_vector, limit=sessions)
    by_id = CoachingSession.objects.defer("embedding").in_bulk([hit_id for hit_id, _ in hits])
    for hit_id, distance in hits:
        if hit_id in by_id and (conversation_id is None or by_id[hit_id].conversation_id != conversation_id):
            session = by_id[hit_id]
            text = f"Asked: {session.message[:300]} | Coach: {session.response[:300]}"
            day = timezone.localdate(session.created_at).isoformat()
            items.append(RetrievedItem("session", day, text, 1 - distance))
    return items


def insight_payload(insight: AiInsight) -> dict:
    """An insight as the app sees it in outbound events (created, dismissed)."""
    return {
        "id": insight.pk,
        "title": insight.title,
        "body": insight.body,
        "dismissedAt": insight.dismissed_at.isoformat() if insight.dismissed_at else None,
    }
