"""The daily engagement refresh (coaching/lifecycle.py): tiers both ways, lifecycle stages, goal
streaks, audited as `system`, synced out, a constant number of queries per batch."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activities.models import ActivityType
from coaching import lifecycle
from coaching.lifecycle import engagement_daily_refresh
from compliance.models import AuditLog
from goals.models import GoalStatus, HealthGoal
from profiles.models import CrmUserProfile
from sync.models import SyncDirection, SyncEvent
from tests.factories import FoodLogFactory, GoalFactory, ProfileFactory

pytestmark = pytest.mark.django_db

# 20:00 local time of yesterday: logs a few hours before NOW fall on NOW's own day whatever the hour the
# suite runs (just after midnight, "0.1 day ago" was already the day before: one active day too many).
NOW = timezone.localtime().replace(hour=20, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)


def _log(profile, *, days_ago: float, **fields):
    at = NOW - dt.timedelta(days=days_ago)
    return FoodLogFactory(user=profile, occurred_at=at, logged_date=timezone.localdate(at), **fields)


def _outbound(operation: str) -> dict[str, dict]:
    events = SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND, entity_type="profile", operation=operation)
    return {event.user_id: event.payload["data"] for event in events}


def test_tiers_move_up_and_down_audited_as_system_and_synced_out():
    # given: a bronze user logging 3 times a day on 6 of the last 14 days (silver: >= 4 days, >= 12 logs),
    # a gold user with no activity for 40 days, and a silver user whose activity still justifies silver
    climber = ProfileFactory(user_id="climber", engagement_tier="bronze")
    for day in range(6):
        for hour in range(3):
            _log(climber, days_ago=day + 0.1 + hour / 24)
    faller = ProfileFactory(user_id="faller", engagement_tier="gold")
    _log(faller, days_ago=40)
    steady = ProfileFactory(user_id="steady", engagement_tier="silver")
    for day in range(5):
        for hour in range(3):
            _log(steady, days_ago=day + 0.1 + hour / 24)

    # when
    result = engagement_daily_refresh(now=NOW, user_ids=["climber", "faller", "steady"])

    # then: one up, one down, the steady user untouched
    assert result["considered"] == 3
    assert (result["tiers_up"], result["tiers_down"]) == (1, 1)
    tiers = dict(CrmUserProfile.objects.values_list("user_id", "engagement_tier"))
    assert tiers == {"climber": "silver", "faller": "bronze", "steady": "silver"}
    audits = AuditLog.objects.filter(action="profile.engagement_tier_changed")
    assert {(a.user_id, a.actor_type, a.actor_id) for a in audits} == {
        ("climber", "system", "daily_engagement_refresh"),
        ("faller", "system", "daily_engagement_refresh"),
    }
    assert audits.get(user_id="faller").changes["engagement_tier"] == {"old": "gold", "new": "bronze"}
    assert audits.get(user_id="climber").changes["activeDays14d"] == 6
    sent = _outbound("tier_changed")
    assert set(sent) == {"climber", "faller"}
    assert (sent["climber"]["engagementTier"], sent["climber"]["previousTier"]) == ("silver", "bronze")
    assert (sent["faller"]["engagementTier"], sent["faller"]["previousTier"]) == ("bronze", "gold")
    assert sent["faller"]["origin"] == "system"

    # and a second run the same day changes, audits and sends nothing more
    again = engagement_daily_refresh(now=NOW, user_ids=["climber", "faller", "steady"])
    assert (again["tiers_up"], again["tiers_down"], again["lifecycle_changed"]) == (0, 0, 0)
    assert AuditLog.objects.filter(action="profile.engagement_tier_changed").count() == 2
    assert len(_outbound("tier_changed")) == 2


# (user, days ago of each engagement activity, days since sign-up, expected stage)
LIFECYCLE_CASES = [
    ("first_log_3d_ago", [3], 30, "new"),  # first activity ever inside R = (now-14d, now]
    ("signed_up_2d_ago_no_log", [], 2, "new"),  # no activity, created inside R
    ("signed_up_30d_ago_no_log", [], 30, "dormant"),  # no activity, created before R
    ("logs_20d_and_2d", [20, 2], 60, "current"),  # active in R and in P = (now-28d, now-14d]
    ("logs_exactly_14d_and_1d", [14, 1], 60, "current"),  # now-14d belongs to P, not R
    ("logs_40d_and_2d", [40, 2], 60, "resurrected"),  # active in R, not in P, active before P
    ("logs_20d_only", [20], 60, "dormant"),  # nothing in R
    ("logs_13d_only_and_60d", [13.9, 60], 90, "resurrected"),  # back after 46 days away
]


def test_lifecycle_stages_follow_the_documented_definitions():
    for user_id, days, signed_up_days_ago, _ in LIFECYCLE_CASES:
        profile = ProfileFactory(user_id=user_id)
        CrmUserProfile.objects.filter(pk=profile.pk).update(created_at=NOW - dt.timedelta(days=signed_up_days_ago))
        for day in days:
            _log(profile, days_ago=day)
    # app opens do not count as activity: a dormant user who only opens the app stays dormant
    opener = ProfileFactory(user_id="only_opens_the_app")
    CrmUserProfile.objects.filter(pk=opener.pk).update(created_at=NOW - dt.timedelta(days=60))
    _log(opener, days_ago=30)
    _log(opener, days_ago=1, activity_type=ActivityType.APP_OPEN, payload={})

    result = engagement_daily_refresh(now=NOW, user_ids=[case[0] for case in LIFECYCLE_CASES] + [opener.user_id])

    stages = dict(CrmUserProfile.objects.values_list("user_id", "lifecycle_stage"))
    assert stages == {**{case[0]: case[3] for case in LIFECYCLE_CASES}, "only_opens_the_app": "dormant"}
    # lifecycle_changed_at moves only when the stage changed (a profile starts as `new`)
    changed_at = dict(CrmUserProfile.objects.values_list("user_id", "lifecycle_changed_at"))
    assert changed_at["first_log_3d_ago"] is None
    assert changed_at["logs_20d_and_2d"] == NOW
    changed = [case for case in LIFECYCLE_CASES if case[3] != "new"]
    assert result["lifecycle_changed"] == len(changed) + 1
    audit = AuditLog.objects.get(action="profile.lifecycle_changed", user_id="logs_40d_and_2d")
    assert (audit.actor_type, audit.changes) == ("system", {"lifecycle_stage": {"old": "new", "new": "resurrected"}})
    sent = _outbound("stage_changed")
    assert sent["logs_40d_and_2d"]["lifecycleStage"] == "resurrected"
    assert sent["logs_40d_and_2d"]["previousStage"] == "new"
    assert "first_log_3d_ago" not in sent

    # a day later nothing changed for the current user: its changed_at stays
    engagement_daily_refresh(now=NOW + dt.timedelta(days=1), user_ids=["logs_20d_and_2d"])
    assert CrmUserProfile.objects.get(user_id="logs_20d_and_2d").lifecycle_changed_at == NOW


def test_a_user_who_stopped_logging_shows_a_broken_streak():
    # given: protein goal 120 g met on 5 consecutive days, the last one 10 days ago; the stored goal
    # still says a 5-day streak (nothing recomputed it since)
    quitter = ProfileFactory(user_id="quitter")
    goal = GoalFactory(user=quitter, goal_value=Decimal("120"), status=GoalStatus.ACTIVE)
    for day in range(10, 15):
        _log(quitter, days_ago=day, protein_g=Decimal("130"))
    last_met = timezone.localdate(NOW - dt.timedelta(days=10))
    HealthGoal.objects.filter(pk=goal.pk).update(streak_days=5, streak_last_date=last_met, progress_pct=100)
    # and a user still meeting the goal (yesterday and the 2 days before)
    keeper = ProfileFactory(user_id="keeper")
    kept = GoalFactory(user=keeper, goal_value=Decimal("120"), status=GoalStatus.ACTIVE)
    for day in (1, 2, 3):
        _log(keeper, days_ago=day, protein_g=Decimal("125"))

    result = engagement_daily_refresh(now=NOW, user_ids=["quitter", "keeper"])

    goal.refresh_from_db()
    kept.refresh_from_db()
    assert (goal.streak_days, goal.streak_last_date) == (0, None)
    assert goal.progress_pct == Decimal("100.00")  # the latest logged day's total against the target
    assert kept.streak_days == 3
    assert result["goals_updated"] == 2


def _population(prefix: str, size: int) -> list[str]:
    """Users whose every refresh path writes: gold -> bronze, new -> current, a stale streak."""
    user_ids = []
    for n in range(size):
        profile = ProfileFactory(user_id=f"{prefix}_{n:03d}", engagement_tier="gold")
        _log(profile, days_ago=20)
        _log(profile, days_ago=1)
        GoalFactory(user=profile, status=GoalStatus.ACTIVE, streak_days=7)
        user_ids.append(profile.user_id)
    return user_ids


def test_a_batch_costs_the_same_number_of_queries_for_10_or_100_users(monkeypatch):
    monkeypatch.setattr(lifecycle, "DAILY_REFRESH_BATCH_SIZE", 500)
    small, large = _population("small", 10), _population("large", 100)

    with CaptureQueriesContext(connection) as small_queries:
        small_result = engagement_daily_refresh(now=NOW, user_ids=small)
    with CaptureQueriesContext(connection) as large_queries:
        large_result = engagement_daily_refresh(now=NOW, user_ids=large)

    assert small_result["tiers_down"] == small_result["lifecycle_changed"] == small_result["goals_updated"] == 10
    assert large_result["tiers_down"] == large_result["lifecycle_changed"] == large_result["goals_updated"] == 100
    assert len(small_queries) == len(large_queries), [q["sql"][:80] for q in large_queries]
    # and in batches of 40, 100 users are 3 batches: the cost grows with batches, not users
    monkeypatch.setattr(lifecycle, "DAILY_REFRESH_BATCH_SIZE", 40)
    with CaptureQueriesContext(connection) as batched:
        engagement_daily_refresh(now=NOW + dt.timedelta(days=1), user_ids=large)
    assert len(batched) <= 3 * len(large_queries)


def test_the_daily_job_is_a_task_scheduled_before_the_daily_insights():
    from coaching.tasks import daily_engagement_job

    schedule = settings.CELERY_BEAT_SCHEDULE
    refresh = schedule["daily-engagement-refresh"]
    assert refresh["task"] == daily_engagement_job.name == "coaching.tasks.daily_engagement_job"
    assert (refresh["schedule"].hour, refresh["schedule"].minute) == ({5}, {30})
    insights = schedule["daily-insights"]["schedule"]
    assert (min(insights.hour), min(insights.minute)) > (5, 30)
    ProfileFactory(user_id="lonely", engagement_tier="silver")  # no activity: drops to bronze
    daily_engagement_job.run()
    assert CrmUserProfile.objects.get(user_id="lonely").engagement_tier == "bronze"


def test_the_full_run_also_clears_embeddings_left_to_users_without_consent():
    profile = ProfileFactory(user_id="withdrawn_long_ago", consent_ai_processing=False)
    log = _log(profile, days_ago=1)
    type(log).objects.filter(pk=log.pk).update(embedding=[0.1] * 256)

    result = engagement_daily_refresh(now=NOW)

    assert result["embeddings_dropped"] == 1
    log.refresh_from_db()
    assert log.embedding is None
