"""Reads over user activities: daily totals, nutrition summaries, engagement signals."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Max, Q, QuerySet, Sum
from django.utils import timezone

from activities.models import ActivityType, UserActivity
from activities.queries import vector_search_exact, vector_search_hnsw

NUTRIENTS = ("calories_kcal", "protein_g", "carbs_g", "fat_g")
# Activities that count as engagement (an app open alone does not make a user engaged).
ENGAGEMENT_TYPES = [t for t in ActivityType.values if t != ActivityType.APP_OPEN]


def _round(value: Decimal | float | None, places: int = 1) -> float | None:
    return None if value is None else round(float(value), places)


def daily_totals_get(*, user_id: str, start: dt.date, end: dt.date) -> dict[dt.date, dict[str, float]]:
    """Per logged day between start and end (inclusive): summed nutrition, water, sleep and exercise."""
    return daily_totals_for_users(user_ids=[user_id], start=start, end=end).get(user_id, {})


def daily_totals_for_users(
    *, user_ids: list[str], start: dt.date, end: dt.date
) -> dict[str, dict[dt.date, dict[str, float]]]:
    """`daily_totals_get` for many users in one grouped query: {user_id: {day: totals}} (users with
    no logs in the range are absent)."""
    rows = (
        UserActivity.objects.filter(user_id__in=user_ids, logged_date__gte=start, logged_date__lte=end)
        .values("user_id", "logged_date")
        .annotate(
            calories_kcal=Sum("calories_kcal"),
            protein_g=Sum("protein_g"),
            carbs_g=Sum("carbs_g"),
            fat_g=Sum("fat_g"),
            water_ml=Sum("water_ml"),
            sleep_hours=Sum("sleep_hours"),
            exercise_minutes=Sum("exercise_minutes"),
            steps=Sum("steps"),
            food_logs=Count("id", filter=Q(activity_type=ActivityType.FOOD_LOG)),
        )
        .order_by("user_id", "logged_date")
    )
    totals: dict[str, dict[dt.date, dict[str, float]]] = {}
    for row in rows:
        user_id, day = row.pop("user_id"), row.pop("logged_date")
        totals.setdefault(user_id, {})[day] = row
    return totals


@dataclass(frozen=True)
class NutritionSummary:
    days: int
    days_logged: int
    averages: dict[str, float | None]  # per logged day
    today: dict[str, float]
    daily: list[dict]

    def as_dict(self) -> dict:
        return {
            "days": self.days,
            "daysLogged": self.days_logged,
            "averages": self.averages,
            "today": self.today,
            "daily": self.daily,
        }


def nutrition_summary_get(*, user_id: str, days: int = 7, today: dt.date | None = None) -> NutritionSummary:
    """Calories and macros over the last `days` days (today included), averaged over days with food logs."""
    today = today or timezone.localdate()
    start = today - dt.timedelta(days=days - 1)
    totals = daily_totals_get(user_id=user_id, start=start, end=today)
    food_days = {day: row for day, row in totals.items() if row["food_logs"]}
    averages = {
        nutrient: (
            _round(sum(float(row[nutrient] or 0) for row in food_days.values()) / len(food_days)) if food_days else None
        )
        for nutrient in NUTRIENTS
    }
    today_row = totals.get(today, {})
    return NutritionSummary(
        days=days,
        days_logged=len(food_days),
        averages=averages,
        today={nutrient: _round(today_row.get(nutrient)) or 0.0 for nutrient in NUTRIENTS},
        daily=[
            {"date": day.isoformat(), **{n: _round(row[n]) or 0.0 for n in NUTRIENTS}}
            for day, row in sorted(food_days.items())
        ],
    )


@dataclass(frozen=True)
class EngagementSignals:
    last_activity_at: dt.datetime | None
    activities_7d: int
    activities_prev_7d: int
    activities_30d: int
    active_days_14d: int


def engagement_signals_for_users(
    *, user_ids: list[str], now: dt.datetime | None = None
) -> dict[str, EngagementSignals]:
    """Activity counts per user in one grouped query (used by churn assessment and metrics)."""
    now = now or timezone.now()
    day_7, day_14, day_30 = (now - dt.timedelta(days=n) for n in (7, 14, 30))
    rows = (
        UserActivity.objects.filter(user_id__in=user_ids, activity_type__in=ENGAGEMENT_TYPES)
        .values("user_id")
        .annotate(
            last_activity_at=Max("occurred_at"),
            activities_7d=Count("id", filter=Q(occurred_at__gte=day_7, occurred_at__lte=now)),
            activities_prev_7d=Count("id", filter=Q(occurred_at__gte=day_14, occurred_at__lt=day_7)),
            activities_30d=Count("id", filter=Q(occurred_at__gte=day_30, occurred_at__lte=now)),
            active_days_14d=Count(
                "logged_date", distinct=True, filter=Q(occurred_at__gte=day_14, occurred_at__lte=now)
            ),
        )
    )
    found = {row.pop("user_id"): EngagementSignals(**row) for row in rows}
    empty = EngagementSignals(None, 0, 0, 0, 0)
    return {user_id: found.get(user_id, empty) for user_id in user_ids}


# Lifecycle windows (docs/retention.md "Lifecycle"): the recent window and the one before it.
LIFECYCLE_WINDOW_DAYS = 14


@dataclass(frozen=True)
class LifecycleSignals:
    """A user's engagement activity (ENGAGEMENT_TYPES, occurred_at <= now) in the lifecycle windows."""

    active_recent: bool  # any in (now - 14d, now]
    active_previous: bool  # any in (now - 28d, now - 14d]
    active_before_recent: bool  # any at or before now - 14d (the previous window or earlier)


def lifecycle_signals_for_users(*, user_ids: list[str], now: dt.datetime) -> dict[str, LifecycleSignals]:
    """Lifecycle signals of many users in one grouped query (users without activity: all False)."""
    recent_from = now - dt.timedelta(days=LIFECYCLE_WINDOW_DAYS)
    previous_from = now - dt.timedelta(days=2 * LIFECYCLE_WINDOW_DAYS)
    rows = (
        UserActivity.objects.filter(user_id__in=user_ids, activity_type__in=ENGAGEMENT_TYPES, occurred_at__lte=now)
        .values("user_id")
        .annotate(
            recent=Count("id", filter=Q(occurred_at__gt=recent_from)),
            previous=Count("id", filter=Q(occurred_at__gt=previous_from, occurred_at__lte=recent_from)),
            before_recent=Count("id", filter=Q(occurred_at__lte=recent_from)),
        )
    )
    found = {
        row["user_id"]: LifecycleSignals(
            active_recent=row["recent"] > 0,
            active_previous=row["previous"] > 0,
            active_before_recent=row["before_recent"] > 0,
        )
        for row in rows
    }
    empty = LifecycleSignals(active_recent=False, active_previous=False, active_before_recent=False)
    return {user_id: found.get(user_id, empty) for user_id in user_ids}


def activity_list(*, user_id: str, activity_type: str | None = None) -> QuerySet[UserActivity]:
    """A user's activities, newest first (embeddings deferred: never needed by lists)."""
    activities = UserActivity.objects.filter(user_id=user_id).defer("embedding")
    if activity_type:
        activities = activities.filter(activity_type=activity_type)
    return activities.order_by("-occurred_at", "-id")


STREAK_LOOKBACK_DAYS = 400


def activity_streak_days(*, user_id: str, today: dt.date | None = None) -> int:
    """Consecutive days with an engagement activity, ending today (or yesterday: today is not over)."""
    today = today or timezone.localdate()
    days = list(
        UserActivity.objects.filter(
            user_id=user_id,
            activity_type__in=ENGAGEMENT_TYPES,
            logged_date__gt=today - dt.timedelta(days=STREAK_LOOKBACK_DAYS),
            logged_date__lte=today,
        )
        .values_list("logged_date", flat=True)
        .distinct()
        .order_by("-logged_date")
    )
    expected = today if days and days[0] == today else today - dt.timedelta(days=1)
    streak = 0
    for day in days:
        if day == expected:
            streak += 1
            expected -= dt.timedelta(days=1)
        elif day < expected:
            break
    return streak


def weight_trend_get(*, user_id: str, days: int = 30, today: dt.date | None = None) -> dict | None:
    """First and last weigh-in of the last `days` days and the change between them (None: no weigh-ins)."""
    today = today or timezone.localdate()
    logs = list(
        UserActivity.objects.filter(
            user_id=user_id,
            activity_type=ActivityType.WEIGHT_LOG,
            weight_kg__isnull=False,
            logged_date__gt=today - dt.timedelta(days=days),
            logged_date__lte=today,
        )
        .order_by("occurred_at", "id")
        .values_list("logged_date", "weight_kg")
    )
    if not logs:
        return None
    (first_day, first), (last_day, last) = logs[0], logs[-1]
    return {
        "weighIns": len(logs),
        "firstKg": float(first),
        "firstDate": first_day.isoformat(),
        "lastKg": float(last),
        "lastDate": last_day.isoformat(),
        "changeKg": round(float(last - first), 1),
    }


# --- Semantic search (pgvector) --------------------------------------------------------------------
# Tables with a user_id column and an HNSW cosine index on `embedding` (activities, coaching sessions).
# pgvector's default. A larger ef_search also raises the planner's cost of the HNSW path, which then
# loses to a sequential scan for users whose rows are a large share of a small table.
VECTOR_SEARCH_EF = 40
VECTOR_SEARCH_MAX_SCAN_TUPLES = 40000
# Up to this many rows a user's search is exact (their rows through the user_id btree, sorted by
# distance): cheaper than the HNSW walk and never misses. A user's rows are a tiny share of the
# table, so the HNSW walk with a user filter must visit ~k / share tuples and loses recall
# (bench/coach.py: 2000 rows per user of 300k, HNSW + relaxed iterative scan gave recall@10 0.64).
VECTOR_SEARCH_EXACT_MAX_ROWS = 20000


def vector_search_by_user(
    *, table: str, user_id: str, vector: list[float], limit: int = 10, ef_search: int = VECTOR_SEARCH_EF
) -> list[tuple[int, float]]:
    """(id, cosine distance) of the user's rows nearest to `vector`, nearest first.

    Users with up to VECTOR_SEARCH_EXACT_MAX_ROWS rows: exact search over their rows. Larger users:
    approximate search on the HNSW index with the user filter applied during the scan; with
    `hnsw.iterative_scan = relaxed_order` pgvector keeps walking the graph until `limit` rows of this
    user are found (up to `hnsw.max_scan_tuples`), so the filter does not starve the result; the outer
    ORDER BY restores exact order among what was found.
    """
    exact = vector_search_exact(
        table=table, user_id=user_id, vector=vector, limit=limit, max_rows=VECTOR_SEARCH_EXACT_MAX_ROWS
    )
    if exact is not None:
        return exact
    return vector_search_hnsw(
        table=table,
        user_id=user_id,
        vector=vector,
        limit=limit,
        ef_search=ef_search,
        max_scan_tuples=VECTOR_SEARCH_MAX_SCAN_TUPLES,
    )


def vector_search_plan(*, table: str, user_id: str, vector: list[float], limit: int = 10) -> str:
    """EXPLAIN of the HNSW query `vector_search_by_user` runs for large users (tests, debugging)."""
    return vector_search_hnsw(
        table=table,
        user_id=user_id,
        vector=vector,
        limit=limit,
        ef_search=VECTOR_SEARCH_EF,
        max_scan_tuples=VECTOR_SEARCH_MAX_SCAN_TUPLES,
        explain=True,
    )


def activity_text(activity: UserActivity) -> str:
    """The text an activity is embedded from: type, day, the app's free text and its numbers."""
    payload = activity.payload or {}
    parts = [activity.activity_type.replace("_", " "), activity.logged_date.isoformat()]
    for key in ("food_name", "meal_type", "exercise_type", "title", "description", "quality", "notes"):
        if payload.get(key):
            parts.append(str(payload[key]))
    labels = {
        "calories_kcal": "kcal",
        "protein_g": "g protein",
        "carbs_g": "g carbs",
        "fat_g": "g fat",
        "water_ml": "ml water",
        "weight_kg": "kg body weight",
        "sleep_hours": "hours sleep",
        "exercise_minutes": "minutes exercise",
        "calories_burned_kcal": "kcal burned",
        "steps": "steps",
    }
    for column, label in labels.items():
        value = getattr(activity, column)
        if value is not None:
            parts.append(f"{float(value):g} {label}")
    return ", ".join(parts)
