"""Raw SQL of the inbound sync hot path: each statement a named function (tests/sync/test_queries.py).

The claim statement answers everything the engine needs before it applies an event: the claimed
row (or nothing: the key exists), whether the user was erased, the user's profile locked for the
transaction, the metrics of the user's active goals and, when the rate-limit counters are in
PostgreSQL, the user's count (the event is counted in the same statement). Table and column names come from the
models' `_meta`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass

from activities.queries import ACTIVITY_ID_NEXTVAL_SQL, EMBED_SWEEP_LOCK_KEY
from compliance.models import ErasureTombstone
from goals.models import GoalStatus, HealthGoal
from profiles.models import CrmUserProfile
from profiles.queries import PROFILE_COLUMNS, PROFILE_TABLE, profile_from_row
from sync.models import SyncDirection, SyncEvent, SyncStatus
from yahealthy_crm.ratelimit import RateCountInSql, RateGrant
from yahealthy_crm.sql import Statement, prepared_cursor

_EVENTS = SyncEvent._meta.db_table
_EVENT_CLAIM_SQL = f"""
    WITH in_flight_wait AS MATERIALIZED (SELECT set_config('lock_timeout', %(lock_wait)s, true) AS lock_wait),
    erased AS MATERIALIZED (
        SELECT EXISTS (
            SELECT 1 FROM {ErasureTombstone._meta.db_table} WHERE user_id_hash = %(user_id_hash)s
        ) AS erased
    ),{{rate_cte}}
    claim AS (
        INSERT INTO {_EVENTS} (direction, user_id, entity_type, operation, external_id, idempotency_key,
            request_hash, status, attempts, error, conflicts, payload, occurred_at, webhook_id,
            created_at, updated_at)
        SELECT %(direction)s, %(user_id)s, %(entity_type)s, %(operation)s, %(external_id)s,
            %(idempotency_key)s, %(request_hash)s, %(status)s, 1, '', '[]'::jsonb, %(payload)s::jsonb,
            %(occurred_at)s, '', now(), now()
        FROM in_flight_wait, erased
        WHERE NOT erased.erased{{rate_condition}}
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id
    )
    SELECT (SELECT id FROM claim), (SELECT erased FROM erased),
        (SELECT coalesce(array_agg(DISTINCT g.metric), '{{{{}}}}') FROM {HealthGoal._meta.db_table} g
            WHERE g.user_id = %(user_id)s AND g.status = %(goal_active)s),
        {{rate_total}},
        CASE WHEN %(reserve_activity_id)s AND EXISTS (SELECT 1 FROM claim) THEN {ACTIVITY_ID_NEXTVAL_SQL} END,
        pg_advisory_xact_lock_shared(%(sweep_lock)s),
        p.*
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT {PROFILE_COLUMNS} FROM {PROFILE_TABLE}
        WHERE user_id = %(user_id)s AND EXISTS (SELECT 1 FROM claim)
        FOR UPDATE
    ) p ON true
"""  # noqa: S608 - names from the models
# Where the rate-limit counter of the claim starts waiting for its row: after the lock timeout is set.
RATE_COUNT_FROM = "FROM in_flight_wait"


@functools.cache
def event_claim_sql(rate_count_sql: str | None = None) -> str:
    """The claim statement; with `rate_count_sql` (the counter's INSERT, `rate_limit_count_in_sql`)
    it also counts the event against the user's rate limit and claims only within the limit."""
    if rate_count_sql is None:
        return _EVENT_CLAIM_SQL.format(rate_cte="", rate_condition="", rate_total="NULL::bigint")
    return _EVENT_CLAIM_SQL.format(
        rate_cte=f"\n    rate AS ({rate_count_sql}),",
        rate_condition="\n            AND (SELECT substr(value, 2)::bigint FROM rate) <= %(rate_limit)s",
        rate_total="(SELECT substr(value, 2)::bigint FROM rate)",
    )


_EVENT_FINISH_SQL = (
    f"UPDATE {_EVENTS} SET status = %s, conflicts = %s::jsonb, response_body = %s::jsonb, "  # noqa: S608
    "response_status = %s, processed_at = now(), updated_at = now() WHERE id = %s RETURNING id"
)


def claim_status(*, operation: str) -> str:
    """The status a claim stores: the one the event will most likely finish with.

    Then the finish UPDATE changes no indexed column and PostgreSQL makes it a HOT update (no new
    entries in the table's six indexes): a third less WAL and buffer traffic per event. Nobody reads
    the status before the commit (a twin waits on the key's index entry). A delete is claimed
    `processing`: a successful delete is a tombstone that the "deleted later" checks of later events
    of the same transaction (a batch) read, and it must not count before it is applied.
    """
    return SyncStatus.PROCESSING if operation == "delete" else SyncStatus.SUCCESS


@dataclass(frozen=True)
class EventClaim:
    event_id: int | None  # None: the key exists already (a replay) or the user was erased
    user_erased: bool
    profile: CrmUserProfile | None  # locked until the transaction ends; None: a new user (or no claim)
    active_goal_metrics: frozenset[str]
    rate_grant: RateGrant | None  # with a `rate_count`: the rate limit's verdict (no claim when refused)
    activity_id: int | None = None  # with `reserve_activity_id` and a claim: an id for a new activity


def event_claim(
    *,
    user_id: str,
    user_id_hash: str,
    entity_type: str,
    operation: str,
    external_id: str,
    idempotency_key: str,
    request_hash: str,
    payload: dict,
    occurred_at: dt.datetime,
    lock_wait: str,
    rate_count: RateCountInSql | None = None,
    reserve_activity_id: bool = False,
) -> EventClaim:
    """Claim the idempotency key and lock the user's profile, in one statement.

    `lock_wait` becomes the transaction's lock_timeout before any lock is waited on: a twin request
    holding the key, or anything holding the profile row (a GDPR erase), raises OperationalError
    (lock_not_available) after that long instead of blocking. The embedding sweep's lock is taken
    shared for the transaction (`activities.services.embedding_sweep_flag_read`), last: after the row
    locks, so a transaction waiting on them (behind a GDPR erase, say) holds up no sweep, and no other
    user's events queued behind that sweep.

    With `rate_count` the statement also counts the event against its user's rate limit (the counter
    commits or rolls back with the transaction) and claims nothing when the limit is exceeded. With
    `reserve_activity_id` a claim also reserves the id of the activity the event may create.
    """
    with prepared_cursor() as cursor:
        cursor.execute(
            event_claim_sql(rate_count.sql if rate_count is not None else None),
            {
                **({"rate_limit": rate_count.limit, **rate_count.params} if rate_count is not None else {}),
                "lock_wait": lock_wait,
                "sweep_lock": EMBED_SWEEP_LOCK_KEY,
                "user_id_hash": user_id_hash,
                "direction": SyncDirection.INBOUND,
                "user_id": user_id,
                "entity_type": entity_type,
                "operation": operation,
                "external_id": external_id,
                "idempotency_key": idempotency_key,
                "request_hash": request_hash,
                "status": claim_status(operation=operation),
                "payload": json.dumps(payload),
                "occurred_at": occurred_at,
                "goal_active": GoalStatus.ACTIVE,
                "reserve_activity_id": reserve_activity_id,
            },
        )
        event_id, erased, goal_metrics, rate_total, activity_id, _sweep_lock, *profile_values = cursor.fetchone()
    profile = profile_from_row(profile_values) if profile_values[0] is not None else None
    return EventClaim(
        event_id=event_id,
        user_erased=erased,
        profile=profile,
        active_goal_metrics=frozenset(goal_metrics),
        rate_grant=rate_count.grant(rate_total) if rate_count is not None else None,
        activity_id=activity_id,
    )


def event_finish_statement(*, event_id: int, outcome: str, conflicts: list, response_json: str) -> Statement:
    """Store the outcome and the 202 response a replay returns."""
    return Statement(_EVENT_FINISH_SQL, [outcome, json.dumps(conflicts, default=str), response_json, 202, event_id])
