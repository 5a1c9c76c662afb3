"""Writes of the coaching app: insights, the daily insights job, coaching-session embeddings."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from activities.embeddings import embed_texts
from activities.selectors import nutrition_summary_get
from coaching.models import AiInsight, CoachingSession, InsightSource, InsightType
from coaching.selectors import coaching_session_text, insight_payload
from compliance.services import audit_record
from goals.models import GoalMetric, GoalStatus, HealthGoal
from profiles.models import TIER_ORDER, CrmUserProfile, EngagementTier
from sync.outbox import outbox_record
from yahealthy_crm.actors import ActorType

logger = logging.getLogger(__name__)

DAILY_INSIGHT_MIN_TIER = EngagementTier.SILVER
NUTRIENT_LABELS = {
    GoalMetric.CALORIES_KCAL: ("calories", "kcal", "calories_kcal"),
    GoalMetric.PROTEIN_G: ("protein", "g", "protein_g"),
    GoalMetric.CARBS_G: ("carbs", "g", "carbs_g"),
    GoalMetric.FAT_G: ("fat", "g", "fat_g"),
}


def insight_create(
    *,
    user_id: str,
    title: str,
    body: str,
    recommendation: str = "",
    insight_type: str = InsightType.GENERAL,
    source: str = InsightSource.AI_ASSISTANT,
    actor_type: str = ActorType.AI_ASSISTANT,
    actor_id: str = "",
    metadata: dict | None = None,
) -> AiInsight:
    with transaction.atomic():
        insight = AiInsight.objects.create(
            user_id=user_id,
            title=title[:200],
            body=body,
            recommendation=recommendation,
            insight_type=insight_type,
            source=source,
            metadata=metadata or {},
        )
        audit_record(
            actor_type=actor_type,
            actor_id=actor_id,
            action="insight.created",
            entity_type="insight",
            entity_id=insight.pk,
            user_id=user_id,
            changes={"title": insight.title, "insight_type": insight_type, "source": source},
        )
        outbox_record(
            user_id=user_id,
            entity_type="insight",
            operation="create",
            entity_id=insight.pk,
            origin=actor_type,
            data={"insight": insight_payload(insight)},
        )
    return insight


def daily_insight_compose(*, user_id: str, today: dt.date) -> dict | None:
    """One insight + one recommendation: the 7-day nutrition summary against active nutrition goals."""
    summary = nutrition_summary_get(user_id=user_id, days=7, today=today)
    if not summary.days_logged:
        return None
    goals = HealthGoal.objects.filter(user_id=user_id, status=GoalStatus.ACTIVE, metric__in=list(NUTRIENT_LABELS))
    gaps = []
    for goal in goals:
        label, unit, key = NUTRIENT_LABELS[GoalMetric(goal.metric)]
        average = summary.averages.get(key)
        if average is not None:
            gaps.append((abs(average - float(goal.goal_value)) / float(goal.goal_value), label, unit, average, goal))
    if gaps:
        _, label, unit, average, goal = max(gaps, key=lambda gap: gap[0])
        direction = "below" if average < float(goal.goal_value) else "above"
        return {
            "title": f"Your {label} is {direction} your goal",
            "body": (
                f"Over the last 7 days you averaged {average:.0f} {unit} of {label} per logged day "
                f"against a goal of {float(goal.goal_value):.0f} {unit} ({summary.days_logged} of 7 days logged)."
            ),
            "recommendation": (
                f"Plan one meal a day that moves {label} toward {float(goal.goal_value):.0f} {unit}."
                if direction == "below"
                else f"Swap one snack a day to bring {label} back toward {float(goal.goal_value):.0f} {unit}."
            ),
            "insight_type": InsightType.NUTRITION,
            "metadata": {"metric": goal.metric, "average": average, "goal": float(goal.goal_value)},
        }
    calories = summary.averages.get("calories_kcal") or 0
    return {
        "title": "Your week in food",
        "body": f"You logged food on {summary.days_logged} of the last 7 days, about {calories:.0f} kcal a day.",
        "recommendation": "Set a nutrition goal so your coach can track progress with you.",
        "insight_type": InsightType.NUTRITION,
        "metadata": {"daysLogged": summary.days_logged},
    }


def daily_insights_generate(*, now: dt.datetime | None = None) -> dict:
    """Seed's daily job: engaged users (tier >= silver, active in the past day, AI consent) get one insight.

    Safe to run twice a day: a user who already has today's daily insight is skipped.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    eligible_tiers = TIER_ORDER[TIER_ORDER.index(DAILY_INSIGHT_MIN_TIER) :]
    user_ids = list(
        CrmUserProfile.objects.filter(
            engagement_tier__in=eligible_tiers,
            last_active_at__gte=now - dt.timedelta(days=1),
            consent_ai_processing=True,
        )
        .exclude(insights__source=InsightSource.DAILY_JOB, insights__created_at__date=today)
        .values_list("user_id", flat=True)
    )
    created = 0
    for user_id in user_ids:
        content = daily_insight_compose(user_id=user_id, today=today)
        if content:
            insight_create(
                user_id=user_id,
                source=InsightSource.DAILY_JOB,
                actor_type=ActorType.SYSTEM,
                actor_id="daily_insights",
                **content,
            )
            created += 1
    return {"eligible": len(user_ids), "created": created}


def insight_dismiss(*, insight: AiInsight, actor_type: str, actor_id: str) -> AiInsight:
    """Dismiss an insight (idempotent: a dismissed insight keeps its first dismissal time, no new audit
    and no second outbound event)."""
    with transaction.atomic():
        updated = AiInsight.objects.filter(pk=insight.pk, dismissed_at__isnull=True).update(dismissed_at=timezone.now())
        insight.refresh_from_db()
        if updated:
            audit_record(
                actor_type=actor_type,
                actor_id=actor_id,
                action="insight.dismissed",
                entity_type="insight",
                entity_id=insight.pk,
                user_id=insight.user_id,
            )
            outbox_record(
                user_id=insight.user_id,
                entity_type="insight",
                operation="dismiss",
                entity_id=insight.pk,
                origin=actor_type,
                data={"insight": insight_payload(insight)},
            )
    return insight


def coaching_session_embedding_refresh(*, session_id: int) -> bool:
    """Compute and store a session's embedding. Safe to run twice; False when there is nothing to do."""
    session = CoachingSession.objects.filter(pk=session_id).defer("embedding").first()
    if session is None:
        return False
    (vector,) = embed_texts([coaching_session_text(session)])
    return bool(CoachingSession.objects.filter(pk=session_id).update(embedding=vector))
