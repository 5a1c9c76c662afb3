"""The churn dashboard's reads (coaching/dashboard.py): counts, distribution, trend, high-risk list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coaching.dashboard import (
    HIGH_RISK_ROWS,
    OUTCOMES_CACHE_KEY,
    RISK_BUCKETS,
    TREND_WEEKS,
    churn_dashboard_get,
    high_band_trend,
)
from coaching.models import ChurnScoreWeekly
from tests.factories import ProfileFactory, RetentionActionFactory

pytestmark = pytest.mark.django_db


def _profile(user_id: str, risk: str, band: str, stage: str = "current"):
    return ProfileFactory(user_id=user_id, churn_risk=Decimal(risk), churn_band=band, lifecycle_stage=stage)


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def test_users_per_band_per_stage_and_the_risk_histogram():
    # given
    _profile("u_low", "0.020", "low", "new")
    _profile("u_low2", "0.049", "low", "current")
    _profile("u_med", "0.600", "medium", "current")
    _profile("u_high", "0.800", "high", "dormant")
    _profile("u_top", "1.000", "high", "dormant")
    # when
    dashboard = churn_dashboard_get()
    # then
    assert dashboard.total_users == 5
    assert dashboard.by_band == {"low": 2, "medium": 1, "high": 2}
    assert dashboard.by_stage == {"new": 1, "current": 2, "resurrected": 0, "dormant": 2}
    assert dashboard.band_by_stage["dormant"] == {"low": 0, "medium": 0, "high": 2}
    histogram = dashboard.risk_histogram
    assert len(histogram) == RISK_BUCKETS
    assert (histogram[0].start, histogram[0].end, histogram[0].users) == (0.0, 0.05, 2)
    assert histogram[12].users == 1  # 0.60 -> [0.60, 0.65)
    assert histogram[16].users == 1  # 0.80
    assert histogram[-1].users == 1  # a risk of exactly 1.0 is in the last bucket
    assert sum(bucket.users for bucket in histogram) == 5


def test_high_band_trend_counts_scored_and_high_users_per_week_for_twelve_weeks():
    # given three weeks of history (this week, 1 and 5 weeks ago) and one too old to show
    today = timezone.localdate()
    this_week = _monday(today)
    users = [_profile(f"t_{i}", "0.5", "medium") for i in range(3)]
    for weeks_ago, bands in ((0, ["high", "high", "low"]), (1, ["high", "low", "low"]), (5, ["medium"] * 3)):
        for user, band in zip(users, bands, strict=True):
            ChurnScoreWeekly.objects.create(
                user=user,
                week=this_week - dt.timedelta(weeks=weeks_ago),
                churn_risk=Decimal("0.8") if band == "high" else Decimal("0.2"),
                churn_band=band,
                engagement_tier="bronze",
                lifecycle_stage="current",
            )
    ChurnScoreWeekly.objects.create(
        user=users[0],
        week=this_week - dt.timedelta(weeks=TREND_WEEKS),
        churn_risk=Decimal("0.9"),
        churn_band="high",
        engagement_tier="bronze",
        lifecycle_stage="current",
    )
    # when
    trend = high_band_trend(today=today)
    # then
    assert len(trend) == TREND_WEEKS
    assert trend[-1].week == this_week
    assert trend[0].week == this_week - dt.timedelta(weeks=TREND_WEEKS - 1)
    assert (trend[-1].scored, trend[-1].high, trend[-1].high_share) == (3, 2, 0.667)
    assert (trend[-2].scored, trend[-2].high) == (3, 1)
    assert (trend[-6].scored, trend[-6].high) == (3, 0)
    assert trend[-3].scored == 0
    assert trend[-3].high_share is None
    assert sum(week.high for week in trend) == 3  # the row 12 weeks ago is outside the window


def test_high_risk_list_is_the_high_band_highest_first_and_bounded():
    for i in range(HIGH_RISK_ROWS + 3):
        _profile(f"h_{i:02d}", f"0.{750 + i}", "high")
    _profile("m_1", "0.740", "medium")
    dashboard = churn_dashboard_get()
    assert len(dashboard.high_risk) == HIGH_RISK_ROWS
    assert dashboard.high_risk[0].user_id == f"h_{HIGH_RISK_ROWS + 2:02d}"
    risks = [p.churn_risk for p in dashboard.high_risk]
    assert risks == sorted(risks, reverse=True)
    assert dashboard.by_band["high"] == HIGH_RISK_ROWS + 3


def test_outcomes_per_action_type_come_from_the_retention_report():
    profile = _profile("o_1", "0.8", "high")
    now = timezone.now()
    RetentionActionFactory(
        user=profile,
        created_at=now - dt.timedelta(days=20),
        outcome_due_at=now - dt.timedelta(days=6),
        returned=True,
    )
    outcomes = {row["actionType"]: row for row in churn_dashboard_get().outcomes["actionTypes"]}
    assert outcomes["reminder"]["actions"] == 1
    assert outcomes["reminder"]["returnRate"] == 1.0
    assert outcomes["easier_goal"]["actions"] == 0


def test_dashboard_reads_take_the_same_queries_for_3_and_60_users():
    counts = []
    for n in (3, 60):
        for i in range(n):
            _profile(f"q{n}_{i}", "0.9", "high", "dormant")
        caches["database"].delete(OUTCOMES_CACHE_KEY)  # the report computed each time: the worst case
        with CaptureQueriesContext(connection) as queries:
            churn_dashboard_get()
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert counts[0] <= 7  # 4 reads, the report (1-2), the cache get and set


def test_outcomes_are_reused_for_ten_minutes_and_say_when_they_were_computed():
    profile = _profile("c_1", "0.8", "high")

    def act():
        RetentionActionFactory(user=profile, action_type="streak_restart", source="staff")

    def actions() -> int:
        board = churn_dashboard_get()
        return next(r for r in board.outcomes["actionTypes"] if r["actionType"] == "streak_restart")["actions"]

    act()
    first = churn_dashboard_get().outcomes_computed_at
    act()
    assert actions() == 1  # the report of a minute ago
    assert churn_dashboard_get().outcomes_computed_at == first
    caches["database"].delete(OUTCOMES_CACHE_KEY)  # as after OUTCOMES_CACHE_S
    assert actions() == 2
