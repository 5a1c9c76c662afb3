"""The daily insights job (seed: "Background Jobs", 06:00 in CRM_TIME_ZONE).

Engaged users (tier >= silver, active in the past day, AI consent) get one insight and one
recommendation written by the coach provider from their real numbers (the 7-day nutrition summary,
active goals with progress, the week's water, sleep and exercise). At most one per user and day:
the insight carries `insight_date` and the constraint `crm_insight_one_per_job_day` refuses a
second one (a user who already has today's is skipped). One user's failure is recorded on the
JobRun and the job goes on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import IntegrityError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from activities.models import UserActivity
from activities.selectors import nutrition_summary_get
from coaching.coach import coach_daily_insight
from coaching.jobs import JobCounts
from coaching.models import AiInsight, InsightSource
from coaching.providers import CoachProvider, coach_provider_get
from coaching.selectors import coach_facts_get
from coaching.services import insight_create
from goals.models import GoalStatus
from goals.selectors import goal_list
from profiles.models import TIER_ORDER, CrmUserProfile, EngagementTier
from yahealthy_crm.actors import ActorType

logger = logging.getLogger(__name__)

DAILY_INSIGHT_MIN_TIER = EngagementTier.SILVER
DAILY_ACTIVE_WITHIN = dt.timedelta(days=1)
ONE_PER_DAY_CONSTRAINT = "crm_insight_one_per_job_day"

Progress = Callable[[str, str], None]  # (user id, what happened), once per considered user


def constraint_name(exc: IntegrityError) -> str:
    """The PostgreSQL constraint an IntegrityError names ("" when unknown)."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) or ""


def daily_insight_candidates(*, now: dt.datetime, user_ids: list[str] | None = None) -> QuerySet[CrmUserProfile]:
    """The seed's selection: tier >= silver, active in the past day (profile or an activity), AI consent."""
    since = now - DAILY_ACTIVE_WITHIN
    recent_activity = UserActivity.objects.filter(user_id=OuterRef("user_id"), occurred_at__gte=since)
    profiles = CrmUserProfile.objects.filter(
        Q(last_active_at__gte=since) | Exists(recent_activity),
        engagement_tier__in=TIER_ORDER[TIER_ORDER.index(DAILY_INSIGHT_MIN_TIER) :],
        consent_ai_processing=True,
    )
    if user_ids is not None:
        profiles = profiles.filter(user_id__in=user_ids)
    return profiles.order_by("id")


def daily_insight_inputs(*, profile: CrmUserProfile, today: dt.date) -> tuple[dict, dict]:
    """What the coach sees: aggregate facts (no identifiers) and the summary (nutrition, active goals)."""
    facts = coach_facts_get(profile=profile, today=today)
    nutrition = nutrition_summary_get(user_id=profile.user_id, days=7, today=today)
    goals = [
        {
            "metric": goal.metric,
            "value": float(goal.goal_value),
            "unit": goal.goal_unit,
            "progressPct": float(goal.progress_pct),
            "streakDays": goal.streak_days,
        }
        for goal in goal_list(user_id=profile.user_id, status=GoalStatus.ACTIVE)[:10]
    ]
    summary = {
        "nutrition": {
            "days": nutrition.days,
            "daysLogged": nutrition.days_logged,
            "averagesPerLoggedDay": nutrition.averages,
        },
        "goals": goals,
    }
    return facts, summary


def daily_insight_for_user(*, profile: CrmUserProfile, today: dt.date, provider: CoachProvider) -> AiInsight | None:
    """Write today's insight for one user; None when the user already has it (the constraint said so)."""
    facts, summary = daily_insight_inputs(profile=profile, today=today)
    draft, fallback_reason = coach_daily_insight(facts=facts, summary=summary, provider=provider)
    try:
        return insight_create(
            user_id=profile.user_id,
            title=draft.title,
            body=draft.body,
            recommendation=draft.recommendation,
            insight_type=draft.insight_type,
            source=InsightSource.DAILY_JOB,
            actor_type=ActorType.SYSTEM,
            actor_id="daily_insights",
            insight_date=today,
            metadata={"provider": draft.provider, "model": draft.model, "fallbackReason": fallback_reason or None},
        )
    except IntegrityError as exc:
        if constraint_name(exc) == ONE_PER_DAY_CONSTRAINT:
            return None
        raise


def daily_insights_generate(
    *,
    now: dt.datetime | None = None,
    user_ids: list[str] | None = None,
    counts: JobCounts | None = None,
    progress: Progress | None = None,
) -> JobCounts:
    """Run the daily insights job (safe to run twice a day: nobody gets a second insight)."""
    now = now or timezone.now()
    counts = counts if counts is not None else JobCounts()
    today = timezone.localdate(now)
    profiles = list(daily_insight_candidates(now=now, user_ids=user_ids))
    counts.considered = len(profiles)
    already = set(
        AiInsight.objects.filter(
            source=InsightSource.DAILY_JOB, insight_date=today, user_id__in=[p.user_id for p in profiles]
        ).values_list("user_id", flat=True)
    )
    provider = coach_provider_get()
    for profile in profiles:
        if profile.user_id in already:
            counts.skipped += 1
            outcome = "skipped: already has today's insight"
        else:
            outcome = counts.user_step(
                profile.user_id,
                lambda profile=profile: daily_insight_for_user(profile=profile, today=today, provider=provider),
                skipped="already has today's insight",
                describe=lambda insight: f"{insight.title} | {insight.recommendation}",
            )
        if progress:
            progress(profile.user_id, outcome)
    return counts
