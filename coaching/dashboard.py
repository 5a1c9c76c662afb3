"""Reads of the staff churn dashboard (admin): users per churn band and lifecycle stage, the risk
distribution, the weekly trend of the high band, retention outcomes per action type, the high-risk list.

A constant number of queries whatever the number of users (asserted in tests/coaching/test_dashboard.py):
one grouped count over the profiles (band x stage x risk bucket), one over the weekly churn history,
the retention outcome report (two; kept OUTCOMES_CACHE_S in the PostgreSQL cache table, see
`retention_outcomes_cached`), and the high-risk page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import caches
from django.db.models import Count, DecimalField, F, IntegerField, Max, Q, Value
from django.db.models.functions import Cast, Floor, Least
from django.utils import timezone

from coaching.models import ChurnScoreWeekly
from coaching.retention_actions import retention_outcomes_report
from profiles.models import ChurnBand, CrmUserProfile, LifecycleStage
from profiles.selectors import churn_risk_list

RISK_BUCKETS = 20  # the histogram: 0.00-0.05, 0.05-0.10, ... 0.95-1.00
TREND_WEEKS = 12
HIGH_RISK_ROWS = 25
# The outcome report compares every decided action with untreated users of the same band and week: one
# probe of the activity index per scored user and week (about 150 ms with 10k users and 12 weeks of
# history). Its inputs change daily (outcomes job, weekly scores), so the dashboard reuses it for ten
# minutes and says when it was computed.
OUTCOMES_CACHE_KEY = "crm:dashboard:retention-outcomes"
OUTCOMES_CACHE_S = 600


@dataclass(frozen=True)
class RiskBucket:
    start: float
    end: float
    users: int


@dataclass(frozen=True)
class TrendWeek:
    week: dt.date  # Monday (CRM_TIME_ZONE), as ChurnScoreWeekly.week
    scored: int  # users scored that week (0: the weekly job did not run)
    high: int

    @property
    def high_share(self) -> float | None:
        return round(self.high / self.scored, 3) if self.scored else None


@dataclass(frozen=True)
class ChurnDashboard:
    total_users: int
    by_band: dict[str, int]  # low, medium, high (every band, zeros included)
    by_stage: dict[str, int]  # new, current, resurrected, dormant
    band_by_stage: dict[str, dict[str, int]]  # stage -> band -> users
    risk_histogram: list[RiskBucket]
    high_trend: list[TrendWeek]  # oldest first, TREND_WEEKS weeks ending with this week
    outcomes: dict  # coaching.retention_actions.retention_outcomes_report
    outcomes_computed_at: dt.datetime
    high_risk: list[CrmUserProfile]  # highest risk first
    last_assessed_at: dt.datetime | None


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _profile_counts() -> tuple[dict, dict, dict, list[RiskBucket], dt.datetime | None]:
    """Users per band, per stage, per stage and band, per risk bucket: one grouped query."""
    # floor(risk * 20), with a risk of exactly 1.0 in the last bucket.
    bucket = Least(
        Cast(Floor(F("churn_risk") * Value(Decimal(RISK_BUCKETS), output_field=DecimalField())), IntegerField()),
        Value(RISK_BUCKETS - 1),
    )
    rows = (
        CrmUserProfile.objects.annotate(bucket=bucket)
        .values("churn_band", "lifecycle_stage", "bucket")
        .annotate(users=Count("id"), assessed=Max("churn_assessed_at"))
        .order_by()
    )
    by_band = dict.fromkeys(ChurnBand.values, 0)
    by_stage = dict.fromkeys(LifecycleStage.values, 0)
    band_by_stage = {stage: dict.fromkeys(ChurnBand.values, 0) for stage in LifecycleStage.values}
    buckets = [0] * RISK_BUCKETS
    last_assessed = None
    for row in rows:
        by_band[row["churn_band"]] = by_band.get(row["churn_band"], 0) + row["users"]
        by_stage[row["lifecycle_stage"]] = by_stage.get(row["lifecycle_stage"], 0) + row["users"]
        band_by_stage.setdefault(row["lifecycle_stage"], dict.fromkeys(ChurnBand.values, 0))
        band_by_stage[row["lifecycle_stage"]][row["churn_band"]] += row["users"]
        buckets[row["bucket"]] += row["users"]
        if row["assessed"] and (last_assessed is None or row["assessed"] > last_assessed):
            last_assessed = row["assessed"]
    histogram = [
        RiskBucket(start=round(i / RISK_BUCKETS, 2), end=round((i + 1) / RISK_BUCKETS, 2), users=users)
        for i, users in enumerate(buckets)
    ]
    return by_band, by_stage, band_by_stage, histogram, last_assessed


def high_band_trend(*, weeks: int = TREND_WEEKS, today: dt.date | None = None) -> list[TrendWeek]:
    """Users scored and users in the high band per week (ChurnScoreWeekly), the last `weeks` weeks
    ending with this one; a week without scores has 0 scored. One query (index on week, band)."""
    this_week = _monday(today or timezone.localdate())
    first = this_week - dt.timedelta(weeks=weeks - 1)
    rows = (
        ChurnScoreWeekly.objects.filter(week__gte=first, week__lte=this_week)
        .values("week")
        # Counting the index's own columns lets PostgreSQL answer from the (week, churn_band) index alone.
        .annotate(scored=Count("*"), high=Count("week", filter=Q(churn_band=ChurnBand.HIGH)))
        .order_by()
    )
    found = {row["week"]: row for row in rows}
    trend = []
    for offset in range(weeks):
        week = first + dt.timedelta(weeks=offset)
        row = found.get(week)
        trend.append(TrendWeek(week=week, scored=row["scored"] if row else 0, high=row["high"] if row else 0))
    return trend


def retention_outcomes_cached(*, now: dt.datetime) -> tuple[dict, dt.datetime]:
    """The retention outcome report and when it was computed, at most OUTCOMES_CACHE_S old. The cache is
    the PostgreSQL table every process shares (caches["database"]), Redis or not."""
    cache = caches["database"]
    cached = cache.get(OUTCOMES_CACHE_KEY)
    if cached is None:
        cached = {"report": retention_outcomes_report(now=now), "computedAt": now}
        cache.set(OUTCOMES_CACHE_KEY, cached, OUTCOMES_CACHE_S)
    return cached["report"], cached["computedAt"]


@dataclass(frozen=True)
class UserChurnWeek:
    week: dt.date
    churn_risk: float | None  # None: not scored that week
    churn_band: str


def user_churn_history(*, user_id: str, weeks: int = TREND_WEEKS, today: dt.date | None = None) -> list[UserChurnWeek]:
    """One user's weekly churn scores, the last `weeks` weeks ending with this one (one query)."""
    this_week = _monday(today or timezone.localdate())
    first = this_week - dt.timedelta(weeks=weeks - 1)
    found = {
        row["week"]: row
        for row in ChurnScoreWeekly.objects.filter(user_id=user_id, week__gte=first, week__lte=this_week).values(
            "week", "churn_risk", "churn_band"
        )
    }
    history = []
    for offset in range(weeks):
        week = first + dt.timedelta(weeks=offset)
        row = found.get(week)
        history.append(
            UserChurnWeek(
                week=week,
                churn_risk=float(row["churn_risk"]) if row else None,
                churn_band=row["churn_band"] if row else "",
            )
        )
    return history


def churn_dashboard_get(*, now: dt.datetime | None = None, high_risk_rows: int = HIGH_RISK_ROWS) -> ChurnDashboard:
    """Everything the churn dashboard shows, in a constant number of queries."""
    now = now or timezone.now()
    by_band, by_stage, band_by_stage, histogram, last_assessed = _profile_counts()
    high_risk = list(
        churn_risk_list(min_risk=Decimal(0), churn_band=ChurnBand.HIGH).only(
            "id",
            "user_id",
            "churn_risk",
            "churn_band",
            "churn_factors",
            "engagement_tier",
            "lifecycle_stage",
            "last_active_at",
            "consent_marketing",
        )[:high_risk_rows]
    )
    outcomes, outcomes_computed_at = retention_outcomes_cached(now=now)
    return ChurnDashboard(
        total_users=sum(by_band.values()),
        by_band=by_band,
        by_stage=by_stage,
        band_by_stage=band_by_stage,
        risk_histogram=histogram,
        high_trend=high_band_trend(today=timezone.localdate(now)),
        outcomes=outcomes,
        outcomes_computed_at=outcomes_computed_at,
        high_risk=high_risk,
        last_assessed_at=last_assessed,
    )


def churn_drivers_summary(profile: CrmUserProfile, *, limit: int = 2) -> str:
    """The top churn drivers of a profile in words (stored with its score), for lists."""
    drivers = (profile.churn_factors or {}).get("drivers") or []
    words = [str(d.get("label") or d.get("feature") or "") for d in drivers if isinstance(d, dict)]
    return "; ".join(word for word in words[:limit] if word)
