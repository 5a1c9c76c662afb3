"""Raw SQL of the coaching app: churn features for every user in one statement, scores written in
batches. Table and column names come from the models' `_meta`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection, transaction

from activities.models import ActivityType, UserActivity
from coaching.models import ChurnScoreWeekly, CoachingSession
from goals.models import GoalStatus, HealthGoal
from profiles.models import CrmUserProfile
from profiles.queries import profiles_lock

# How far back a user's history is read at a cutoff (older activity does not change the features).
HISTORY_DAYS = 120
FEATURES_WORK_MEM = "64MB"
STREAM_CHUNK = 2000  # users scored and written per batch

_PROFILES = CrmUserProfile._meta.db_table
_ACTIVITIES = UserActivity._meta.db_table
_SESSIONS = CoachingSession._meta.db_table
_GOALS = HealthGoal._meta.db_table
_HISTORY = ChurnScoreWeekly._meta.db_table

# One row per user (one created later has no history at the cutoff): activity per day in the window,
# coach use, goals, and (with a horizon) the label: no activity in (cutoff, cutoff + horizon].
CHURN_FEATURES_SQL = f"""
    WITH days AS (
        SELECT user_id, logged_date AS day, count(*) AS logs
        FROM {_ACTIVITIES}
        WHERE activity_type <> %(app_open)s AND occurred_at < %(cutoff)s::timestamptz
            AND logged_date > %(cutoff_date)s::date - %(history)s::int
            AND (%(all_users)s::bool OR user_id = ANY(%(user_ids)s::text[]))
        GROUP BY user_id, logged_date
    ),
    per_user AS (
        SELECT user_id,
            max(day) AS last_day,
            min(day) AS first_day,
            count(*) AS active_days,
            count(*) FILTER (WHERE day > %(cutoff_date)s::date - 28) AS active_days_28,
            count(*) FILTER (
                WHERE day > %(cutoff_date)s::date - 56 AND day <= %(cutoff_date)s::date - 28
            ) AS active_days_prev_28,
            count(*) FILTER (WHERE day > %(cutoff_date)s::date - 14) AS active_days_14,
            coalesce(sum(logs) FILTER (WHERE day > %(cutoff_date)s::date - 28), 0) AS logs_28,
            coalesce(sum(logs) FILTER (WHERE day > %(cutoff_date)s::date - 30), 0) AS logs_30,
            coalesce(sum(logs) FILTER (WHERE day > %(cutoff_date)s::date - 7), 0) AS logs_7,
            coalesce(sum(logs) FILTER (WHERE day > %(cutoff_date)s::date - 14 AND day <= %(cutoff_date)s::date - 7), 0)
                AS logs_prev_7
        FROM days GROUP BY user_id
    ),
    coach AS (
        SELECT user_id, count(*)::int AS sessions_28 FROM {_SESSIONS}
        WHERE created_at < %(cutoff)s::timestamptz AND created_at >= %(cutoff)s::timestamptz - interval '28 days'
            AND (%(all_users)s::bool OR user_id = ANY(%(user_ids)s::text[]))
        GROUP BY user_id
    ),
    goals AS (
        SELECT user_id, count(*)::int AS active_goals, avg(progress_pct) AS goal_progress FROM {_GOALS}
        WHERE status = %(goal_active)s AND created_at < %(cutoff)s::timestamptz
            AND (%(all_users)s::bool OR user_id = ANY(%(user_ids)s::text[]))
        GROUP BY user_id
    ),
    future AS (
        SELECT DISTINCT user_id FROM {_ACTIVITIES}
        WHERE %(horizon)s::int > 0 AND activity_type <> %(app_open)s AND occurred_at >= %(cutoff)s::timestamptz
            AND occurred_at < %(cutoff)s::timestamptz + make_interval(days => %(horizon)s::int)
            AND (%(all_users)s::bool OR user_id = ANY(%(user_ids)s::text[]))
    )
    SELECT p.user_id, p.engagement_tier, p.consent_ai_processing,
        GREATEST(%(cutoff_date)s::date - p.created_at::date, 0) AS profile_age_days,
        u.last_day, u.first_day, coalesce(u.active_days, 0), coalesce(u.active_days_28, 0),
        coalesce(u.active_days_prev_28, 0), coalesce(u.active_days_14, 0), coalesce(u.logs_28, 0)::int,
        coalesce(u.logs_30, 0)::int, coalesce(u.logs_7, 0)::int, coalesce(u.logs_prev_7, 0)::int,
        coalesce(c.sessions_28, 0), coalesce(g.active_goals, 0), coalesce(g.goal_progress, 0),
        f.user_id IS NULL AS churned
    FROM {_PROFILES} p
    LEFT JOIN per_user u ON u.user_id = p.user_id
    LEFT JOIN coach c ON c.user_id = p.user_id
    LEFT JOIN goals g ON g.user_id = p.user_id
    LEFT JOIN future f ON f.user_id = p.user_id
    WHERE (%(all_users)s::bool OR p.user_id = ANY(%(user_ids)s::text[]))
    ORDER BY p.user_id
"""  # noqa: S608 - names from the models


@dataclass(frozen=True)
class ActivityHistory:
    """What one user did up to a cutoff (the raw material of the churn features)."""

    user_id: str
    engagement_tier: str
    consent_ai_processing: bool
    profile_age_days: int
    last_day: dt.date | None
    first_day: dt.date | None
    active_days: int
    active_days_28: int
    active_days_prev_28: int
    active_days_14: int
    logs_28: int
    logs_30: int
    logs_7: int
    logs_prev_7: int
    coach_sessions_28: int
    active_goals: int
    goal_progress: float
    churned: bool  # no activity in (cutoff, cutoff + horizon]; meaningless without a horizon


def _features_params(*, cutoff, cutoff_date, horizon_days, user_ids) -> dict:
    return {
        "cutoff": cutoff,
        "cutoff_date": cutoff_date,
        "history": HISTORY_DAYS,
        "horizon": horizon_days,
        "app_open": ActivityType.APP_OPEN,
        "goal_active": GoalStatus.ACTIVE,
        "all_users": user_ids is None,
        "user_ids": user_ids or [],
    }


def _history(row) -> ActivityHistory:
    return ActivityHistory(*row[:16], goal_progress=float(row[16]), churned=row[17])


def activity_histories_get(
    *, cutoff: dt.datetime, cutoff_date: dt.date, horizon_days: int = 0, user_ids: list[str] | None = None
) -> list[ActivityHistory]:
    """Every user's history up to `cutoff`, in one statement (and the label when `horizon_days`)."""
    params = _features_params(cutoff=cutoff, cutoff_date=cutoff_date, horizon_days=horizon_days, user_ids=user_ids)
    if user_ids is not None:  # a few users (metrics, the coach's tool): small aggregations
        with connection.cursor() as cursor:
            cursor.execute(CHURN_FEATURES_SQL, params)
            return [_history(row) for row in cursor.fetchall()]
    with transaction.atomic(), connection.cursor() as cursor:
        # Its two aggregations hold a row per user and per active day: keep them in memory (the
        # default 4 MB spills to disk from ~10k users on); SET LOCAL, for this statement only.
        cursor.execute("SELECT set_config('work_mem', %s, true)", [FEATURES_WORK_MEM])
        cursor.execute(CHURN_FEATURES_SQL, params)
        return [_history(row) for row in cursor.fetchall()]


def activity_histories_stream(
    *, cutoff: dt.datetime, cutoff_date: dt.date, user_ids: list[str] | None = None, chunk: int | None = None
) -> Iterator[list[ActivityHistory]]:
    """The same statement, read `chunk` users at a time (flat memory), from a connection of its own:
    the reader's snapshot stays open while the caller writes and commits batch by batch, so no
    profile row stays locked for the whole job. Inside a transaction (a test, a dry run) the caller's
    uncommitted rows are only visible to its own connection: then everything is read at once."""
    chunk = chunk or STREAM_CHUNK
    if connection.in_atomic_block:
        histories = activity_histories_get(cutoff=cutoff, cutoff_date=cutoff_date, user_ids=user_ids)
        for start in range(0, len(histories), chunk):
            yield histories[start : start + chunk]
        return
    reader = connection.get_new_connection(connection.get_connection_params())
    try:
        # The session time zone Django gives its own connections (dates of timestamps are taken in it).
        reader.execute("SELECT set_config('TimeZone', %s, false)", [connection.timezone_name])
        with reader.transaction(), reader.cursor(name="churn_features") as cursor:
            reader.execute("SELECT set_config('work_mem', %s, true)", [FEATURES_WORK_MEM])
            cursor.itersize = chunk
            cursor.execute(
                CHURN_FEATURES_SQL,
                _features_params(cutoff=cutoff, cutoff_date=cutoff_date, horizon_days=0, user_ids=user_ids),
            )
            while rows := cursor.fetchmany(chunk):
                yield [_history(row) for row in rows]
    finally:
        reader.close()


# The batch travels as ONE JSON document (json.dumps is C-fast; an array of JSON strings would be
# escaped element by element on the client).
_SCORES_WRITE_SQL = f"""
    UPDATE {_PROFILES} AS p
    SET churn_risk = v.risk, churn_band = v.band, churn_factors = v.factors, churn_assessed_at = %s,
        updated_at = now()
    FROM json_to_recordset(%s::json) AS v(user_id text, risk numeric, band text, factors jsonb)
    WHERE p.user_id = v.user_id
"""  # noqa: S608 - names from the models
_HISTORY_UPSERT_SQL = f"""
    INSERT INTO {_HISTORY} (user_id, week, churn_risk, churn_band, engagement_tier, lifecycle_stage,
        model_version, factors, created_at)
    SELECT v.user_id, %s, v.risk, v.band, p.engagement_tier, p.lifecycle_stage, %s, v.factors, now()
    FROM json_to_recordset(%s::json) AS v(user_id text, risk numeric, band text, factors jsonb)
    JOIN {_PROFILES} p ON p.user_id = v.user_id
    ON CONFLICT (user_id, week) DO UPDATE SET churn_risk = EXCLUDED.churn_risk, churn_band = EXCLUDED.churn_band,
        engagement_tier = EXCLUDED.engagement_tier, lifecycle_stage = EXCLUDED.lifecycle_stage,
        model_version = EXCLUDED.model_version, factors = EXCLUDED.factors
"""  # noqa: S608 - names from the models


def churn_scores_write(
    *,
    user_ids: list[str],
    risks: list,
    bands: list[str],
    factors: list[dict],
    assessed_at: dt.datetime,
    week: dt.date,
    model_version: int | None,
) -> None:
    """Store the scores on the profiles and in this week's history (two statements per batch, after
    the profiles are locked in user_id order: `profiles.queries.profiles_lock`). Call in a transaction."""
    rows = json.dumps(
        [
            {"user_id": user_id, "risk": risk, "band": band, "factors": factor}
            for user_id, risk, band, factor in zip(user_ids, risks, bands, factors, strict=True)
        ]
    )
    profiles_lock(user_ids=user_ids)
    with connection.cursor() as cursor:
        cursor.execute(_SCORES_WRITE_SQL, [assessed_at, rows])
        cursor.execute(_HISTORY_UPSERT_SQL, [week, model_version, rows])
