"""Retention actions: the weekly churn job's proposals, staff actions, and what became of them.

- `weekly_churn_run` (Sunday 08:00): refresh every churn score (`coaching.retention.churn_assess_users`),
  then for the seed's selection (inactive > 7 days and < 5 activities in 30 days, AI consent, no
  retention action in the last 7 days) the coach proposes ONE action fitted to the user's top churn
  drivers, stored as an insight of type retention and a `RetentionAction`; then the staff alerts for
  users who crossed into the high band.
- `retention_action_record`: the one place a RetentionAction is written (job and staff alike).
- Consent (design.md "Compliance"): in-app insights need AI consent; an action that reaches the user
  outside the app (`reminder`: a push or e-mail reminder; `staff_call`: a person calls) needs marketing
  consent. Without it only in-app actions are allowed.
- Outcomes: `retention_outcomes_update` (daily) marks each action whose 14-day window ended: returned =
  any activity between the action and the end of the window. `retention_outcomes_report` compares the
  return rate per action type with untreated users of the same band in the same week.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from django.db import IntegrityError, transaction
from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, Min, OuterRef, Q, Subquery
from django.utils import timezone
from rest_framework import status

from activities.models import UserActivity
from coaching.alerts import high_risk_alerts_raise
from coaching.coach import coach_retention_action
from coaching.daily_insights import Progress, constraint_name
from coaching.error_codes import CoachingErrorCode
from coaching.jobs import JobCounts
from coaching.models import (
    ChurnScoreWeekly,
    InsightSource,
    InsightType,
    RetentionAction,
    RetentionActionSource,
    RetentionActionType,
)
from coaching.providers import CoachProvider, coach_provider_get
from coaching.retention import churn_assess_users
from coaching.selectors import coach_facts_get
from coaching.services import insight_create
from compliance.services import audit_record
from goals.models import GoalStatus
from goals.selectors import goal_list
from profiles.models import CrmUserProfile
from yahealthy_crm.actors import ActorType
from yahealthy_crm.errors import ApplicationError

logger = logging.getLogger(__name__)

RETENTION_INACTIVE_DAYS = 7  # seed: inactive > 7 days
RETENTION_MAX_ACTIVITIES_30D = 5  # seed: < 5 activities in 30 days
RETENTION_RENUDGE_AFTER = dt.timedelta(days=7)  # no second action (job or staff) within a week
RETENTION_OUTCOME_WINDOW = dt.timedelta(days=14)  # "came back" = any activity within 14 days
# Actions that reach the user outside the app: marketing consent required.
OUTSIDE_APP_ACTIONS = (RetentionActionType.REMINDER, RetentionActionType.STAFF_CALL)
IN_APP_ACTIONS = (RetentionActionType.STREAK_RESTART, RetentionActionType.EASIER_GOAL)
ONE_PER_DAY_CONSTRAINT = "crm_insight_one_per_job_day"
MAX_DRIVERS_SHOWN = 5


def retention_action_types_allowed(*, profile: CrmUserProfile) -> list[str]:
    """The action types this user may get, in-app first (the last resort is the first)."""
    allowed = [action.value for action in IN_APP_ACTIONS]
    if profile.consent_marketing:
        allowed += [action.value for action in OUTSIDE_APP_ACTIONS]
    return allowed


def _drivers(profile: CrmUserProfile) -> list[dict]:
    drivers = (profile.churn_factors or {}).get("drivers") or []
    return [d for d in drivers if isinstance(d, dict)][:MAX_DRIVERS_SHOWN]


def retention_action_record(
    *,
    profile: CrmUserProfile,
    action_type: str,
    source: str,
    actor_type: str,
    actor_id: str,
    insight_id: int | None = None,
    now: dt.datetime | None = None,
) -> RetentionAction:
    """Write one retention action with the user's churn risk, band and drivers at this moment.

    Raises ApplicationError (403 `marketing_consent_required`) for an outside-the-app action of a user
    without marketing consent, and (400) for an unknown type.
    """
    if action_type not in RetentionActionType.values:
        raise ApplicationError(
            f"Unknown action type '{action_type}'. Known: {', '.join(RetentionActionType.values)}.",
            details={"actionType": [f"Must be one of {', '.join(RetentionActionType.values)}."]},
        )
    if action_type not in retention_action_types_allowed(profile=profile):
        raise ApplicationError(
            f"A {action_type} reaches the user outside the app and needs marketing consent, which this user "
            "has not given. Choose an in-app action (streak_restart, easier_goal).",
            code=CoachingErrorCode.MARKETING_CONSENT_REQUIRED,
            status_code=status.HTTP_403_FORBIDDEN,
            details={"consent": "consent_marketing"},
        )
    now = now or timezone.now()
    with transaction.atomic():
        action = RetentionAction.objects.create(
            user_id=profile.user_id,
            action_type=action_type,
            source=source,
            actor_id=actor_id[:128],
            insight_id=insight_id,
            churn_risk=profile.churn_risk,
            churn_band=profile.churn_band,
            drivers=_drivers(profile),
            created_at=now,
            outcome_due_at=now + RETENTION_OUTCOME_WINDOW,
        )
        audit_record(
            actor_type=actor_type,
            actor_id=actor_id,
            action="retention_action.created",
            entity_type="retention_action",
            entity_id=action.pk,
            user_id=profile.user_id,
            changes={
                "actionType": action_type,
                "source": source,
                "churnRisk": float(profile.churn_risk),
                "churnBand": profile.churn_band,
            },
        )
    return action


def retention_candidates(*, now: dt.datetime, user_ids: list[str] | None = None):
    """The seed's selection on the fresh scores: inactive > 7 days, < 5 activities in 30 days, AI consent,
    and no retention action (job or staff) in the last 7 days."""
    recent_action = RetentionAction.objects.filter(
        user_id=OuterRef("user_id"), created_at__gte=now - RETENTION_RENUDGE_AFTER
    )
    profiles = CrmUserProfile.objects.filter(
        consent_ai_processing=True,
        churn_factors__daysInactive__gt=RETENTION_INACTIVE_DAYS,
        churn_factors__activities30d__lt=RETENTION_MAX_ACTIVITIES_30D,
    ).exclude(Exists(recent_action))
    if user_ids is not None:
        profiles = profiles.filter(user_id__in=user_ids)
    return profiles.order_by("id")


def retention_action_propose(
    *, profile: CrmUserProfile, provider: CoachProvider, now: dt.datetime
) -> RetentionAction | None:
    """Ask the coach for one action fitted to the user's drivers; store the insight and the action.
    None when the user already got today's retention insight (constraint)."""
    today = timezone.localdate(now)
    factors = profile.churn_factors or {}
    churn = {
        "risk": float(profile.churn_risk),
        "band": profile.churn_band,
        "daysInactive": factors.get("daysInactive"),
        "activities30d": factors.get("activities30d"),
        "drivers": _drivers(profile),
    }
    goals = [
        {"metric": g.metric, "value": float(g.goal_value), "unit": g.goal_unit, "progressPct": float(g.progress_pct)}
        for g in goal_list(user_id=profile.user_id, status=GoalStatus.ACTIVE)[:10]
    ]
    facts = coach_facts_get(profile=profile, today=today)
    allowed = retention_action_types_allowed(profile=profile)
    proposal, fallback_reason = coach_retention_action(
        facts=facts, churn=churn, goals=goals, allowed=allowed, provider=provider
    )
    try:
        with transaction.atomic():
            insight = insight_create(
                user_id=profile.user_id,
                title=proposal.title,
                body=proposal.body,
                recommendation=proposal.recommendation,
                insight_type=InsightType.RETENTION,
                source=InsightSource.CHURN_JOB,
                actor_type=ActorType.SYSTEM,
                actor_id="weekly_churn_assessment",
                insight_date=today,
                metadata={
                    "retentionAction": proposal.action_type,
                    # The app delivers a reminder outside the app (push/e-mail); the rest stay in the app.
                    "channel": "outside_app" if proposal.action_type in OUTSIDE_APP_ACTIONS else "in_app",
                    "churnRisk": churn["risk"],
                    "churnBand": churn["band"],
                    "provider": proposal.provider,
                    "model": proposal.model,
                    "fallbackReason": fallback_reason or None,
                },
            )
            return retention_action_record(
                profile=profile,
                action_type=proposal.action_type,
                source=RetentionActionSource.JOB,
                actor_type=ActorType.SYSTEM,
                actor_id="weekly_churn_assessment",
                insight_id=insight.pk,
                now=now,
            )
    except IntegrityError as exc:
        if constraint_name(exc) == ONE_PER_DAY_CONSTRAINT:
            return None
        raise


def weekly_churn_run(
    *,
    now: dt.datetime | None = None,
    user_ids: list[str] | None = None,
    counts: JobCounts | None = None,
    progress: Progress | None = None,
    send_alerts: bool = True,
) -> JobCounts:
    """The weekly churn job: refresh scores, one coach-proposed action per at-risk user, staff alerts."""
    now = now or timezone.now()
    counts = counts if counts is not None else JobCounts()
    counts.details["assessed"] = churn_assess_users(now=now, user_ids=user_ids)
    profiles = list(retention_candidates(now=now, user_ids=user_ids))
    counts.considered = len(profiles)
    provider = coach_provider_get()
    actions: dict[str, int] = defaultdict(int)

    def described(action: RetentionAction) -> str:
        actions[action.action_type] += 1
        return f"{action.action_type} (risk {action.churn_risk}, {action.churn_band})"

    for profile in profiles:
        outcome = counts.user_step(
            profile.user_id,
            lambda profile=profile: retention_action_propose(profile=profile, provider=provider, now=now),
            skipped="already has today's retention insight",
            describe=described,
        )
        if progress:
            progress(profile.user_id, outcome)
    counts.details["actions"] = dict(actions)
    if send_alerts:
        counts.details["highRiskAlerts"] = high_risk_alerts_raise(now=now)
    return counts


# --- Outcomes -------------------------------------------------------------------------------------


def retention_outcomes_update(*, now: dt.datetime | None = None) -> int:
    """Mark every pending action whose window ended: returned = any activity in (created_at, due]. One UPDATE."""
    now = now or timezone.now()
    window = UserActivity.objects.filter(
        user_id=OuterRef("user_id"), occurred_at__gt=OuterRef("created_at"), occurred_at__lte=OuterRef("outcome_due_at")
    )
    first = window.order_by().values("user_id").annotate(first=Min("occurred_at")).values("first")
    return RetentionAction.objects.filter(returned__isnull=True, outcome_due_at__lte=now).update(
        returned=Exists(window), returned_at=Subquery(first)
    )


def _week_of(moment: dt.datetime) -> dt.date:
    """Monday of the week (CRM_TIME_ZONE): the `week` of ChurnScoreWeekly."""
    day = timezone.localdate(moment)
    return day - dt.timedelta(days=day.weekday())


def _rate(returned: int, total: int) -> float | None:
    return round(returned / total, 3) if total else None


def retention_outcomes_report(*, now: dt.datetime | None = None) -> dict:
    """Per action type: actions, decided, returned, return rate; and the control group's return rate.

    Control group of an action type: users scored in the same band in the same week as that type's
    decided actions (ChurnScoreWeekly) who got no retention action from 7 days before the score to the
    end of its 14-day window; returned = any activity within 14 days after the score.
    """
    now = now or timezone.now()
    rows = list(
        RetentionAction.objects.values("action_type", "churn_band", "created_at", "returned").order_by("created_at")
    )
    by_type: dict[str, dict] = {}
    pairs: dict[str, set[tuple[dt.date, str]]] = defaultdict(set)
    for row in rows:
        entry = by_type.setdefault(row["action_type"], {"actions": 0, "pending": 0, "decided": 0, "returned": 0})
        entry["actions"] += 1
        if row["returned"] is None:
            entry["pending"] += 1
            continue
        entry["decided"] += 1
        entry["returned"] += int(row["returned"])
        pairs[row["action_type"]].add((_week_of(row["created_at"]), row["churn_band"]))
    control = _control_groups(pairs={pair for found in pairs.values() for pair in found}, now=now)
    report = []
    for action_type in RetentionActionType.values:
        entry = by_type.get(action_type, {"actions": 0, "pending": 0, "decided": 0, "returned": 0})
        users = sum(control.get(pair, (0, 0))[0] for pair in pairs.get(action_type, ()))
        came_back = sum(control.get(pair, (0, 0))[1] for pair in pairs.get(action_type, ()))
        rate, control_rate = _rate(entry["returned"], entry["decided"]), _rate(came_back, users)
        report.append(
            {
                "actionType": action_type,
                **entry,
                "returnRate": rate,
                "control": {"users": users, "returned": came_back, "returnRate": control_rate},
                "lift": round(rate - control_rate, 3) if rate is not None and control_rate is not None else None,
            }
        )
    return {"windowDays": RETENTION_OUTCOME_WINDOW.days, "actionTypes": report}


def _control_groups(*, pairs: set[tuple[dt.date, str]], now: dt.datetime) -> dict[tuple[dt.date, str], tuple[int, int]]:
    """(week, band) -> (untreated users, of whom returned), for scores whose 14-day window ended."""
    if not pairs:
        return {}
    window_end = ExpressionWrapper(OuterRef("created_at") + RETENTION_OUTCOME_WINDOW, output_field=DateTimeField())
    window_start = ExpressionWrapper(OuterRef("created_at") - RETENTION_RENUDGE_AFTER, output_field=DateTimeField())
    treated = RetentionAction.objects.filter(
        user_id=OuterRef("user_id"), created_at__gte=window_start, created_at__lte=window_end
    )
    came_back = UserActivity.objects.filter(
        user_id=OuterRef("user_id"), occurred_at__gt=OuterRef("created_at"), occurred_at__lte=window_end
    )
    match = Q()
    for week, band in pairs:
        match |= Q(week=week, churn_band=band)
    rows = (
        ChurnScoreWeekly.objects.filter(match, created_at__lte=now - RETENTION_OUTCOME_WINDOW)
        .exclude(Exists(treated))
        .annotate(came_back=Exists(came_back))
        .values("week", "churn_band")
        .annotate(users=Count("id"), returned=Count("id", filter=Q(came_back=True)))
        .order_by()
    )
    return {(row["week"], row["churn_band"]): (row["users"], row["returned"]) for row in rows}
