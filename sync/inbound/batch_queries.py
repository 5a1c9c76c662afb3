"""The SQL of the batch intake (sync.inbound.batch): one statement per table and step, whatever the
number of events. Rows travel as one array per column (`unnest`); column lists and SQL types come
from the models' `_meta`.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import JSONField, Model

from activities.models import UserActivity
from compliance.models import AuditLog, ErasureTombstone
from goals.models import GoalStatus, HealthGoal
from profiles.models import CrmUserProfile
from sync.models import SyncDirection, SyncEvent, SyncStatus

_STAMPS = ("created_at", "updated_at")  # set by the database: now(), as the single-event path does


def _array_type(field) -> str:
    """The SQL type of a column's parameter array (JSON travels as text and is cast per row)."""
    return "text" if isinstance(field, JSONField) else field.db_type(connection)


def _param(field, value):
    if isinstance(field, JSONField):
        return None if value is None else json.dumps(value, cls=DjangoJSONEncoder)
    if value is None or type(value) in _PASSED_AS_IS:
        # What get_db_prep_save returns unchanged on PostgreSQL (psycopg adapts it); skipping the
        # call matters at 500 rows x 20 columns per statement.
        return value
    return field.get_db_prep_save(value, connection)


_PASSED_AS_IS = frozenset({str, int, bool, float, Decimal, dt.date, dt.datetime})


def _cast(field, expression: str) -> str:
    return f"{expression}::jsonb" if isinstance(field, JSONField) else expression


def _inserted_fields(model: type[Model], exclude: tuple[str, ...] = ()) -> list:
    return [
        f for f in model._meta.concrete_fields if not f.primary_key and f.name not in _STAMPS and f.name not in exclude
    ]


def _rows_insert_sql(model: type[Model], fields: list, *, tail: str = "", where: str = "", order_by: str = "") -> str:
    """INSERT ... SELECT FROM unnest(<one array per field>): any number of rows, one statement."""
    stamps = [f.column for f in model._meta.concrete_fields if f.name in _STAMPS]
    columns = ", ".join([*(f.column for f in fields), *stamps])
    selected = ", ".join([*(_cast(f, f"v.{f.column}") for f in fields), *(["now()"] * len(stamps))])
    arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in fields)
    aliases = ", ".join(f.column for f in fields)
    return (
        f"INSERT INTO {model._meta.db_table} ({columns}) "  # noqa: S608 - names from the model
        f"SELECT {selected} FROM unnest({arrays}) AS v({aliases}) {where} {order_by} {tail}"
    )


def _columns_of(fields: list, objects: list) -> list[list]:
    return [[_param(f, getattr(obj, f.attname)) for obj in objects] for f in fields]


# --- Tombstones -----------------------------------------------------------------------------------


def tombstones_find(*, user_id_hashes: list[str]) -> set[str]:
    """Which of these user-id hashes belong to erased users (one SELECT)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT user_id_hash FROM {ErasureTombstone._meta.db_table} WHERE user_id_hash = ANY(%s)",  # noqa: S608
            [user_id_hashes],
        )
        return {row[0] for row in cursor.fetchall()}


# --- Sync events ----------------------------------------------------------------------------------

_CLAIM_FIELDS = _inserted_fields(SyncEvent)


def sync_events_claim(*, events: list[SyncEvent], lock_timeout: str) -> dict[str, int]:
    """INSERT the events' rows in one statement, skipping keys that exist; returns {key: id} of the new.

    Rows go in in key order, so two batches sharing keys wait for each other in one order (no
    deadlock). `lock_timeout` (SET LOCAL, for the rest of the transaction) bounds the wait for a key
    another request holds uncommitted: past it the statement fails with OperationalError.
    """
    sql = _rows_insert_sql(
        SyncEvent,
        _CLAIM_FIELDS,
        where=", (SELECT set_config('lock_timeout', %s, true)) AS in_flight_wait",
        order_by="ORDER BY v.idempotency_key",
        tail="ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*_columns_of(_CLAIM_FIELDS, events), lock_timeout])
        return {key: pk for pk, key in cursor.fetchall()}


def sync_events_insert(*, events: list[SyncEvent]) -> None:
    """INSERT rows (rejected events: their keys are unique placeholders) in one statement."""
    if events:
        with connection.cursor() as cursor:
            cursor.execute(_rows_insert_sql(SyncEvent, _CLAIM_FIELDS), _columns_of(_CLAIM_FIELDS, events))


def sync_events_delete(*, ids: list[int]) -> None:
    """Remove claimed rows whose events store nothing after all (their user was erased meanwhile)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {SyncEvent._meta.db_table} WHERE id = ANY(%s)", [ids])  # noqa: S608


def sync_events_by_key(*, keys: list[str]) -> dict[str, SyncEvent]:
    return {event.idempotency_key: event for event in SyncEvent.objects.filter(idempotency_key__in=keys)}


_FINISHED_FIELDS = [
    SyncEvent._meta.get_field(name)
    for name in ("idempotency_key", "status", "error", "conflicts", "response_body", "response_status")
]


def sync_events_finish(*, ids: list[int], events: list[SyncEvent]) -> None:
    """Store each claimed event's outcome and response in one UPDATE (a rejected one frees its key)."""
    fields = _FINISHED_FIELDS
    assignments = ", ".join(f"{f.column} = {_cast(f, f'v.{f.column}')}" for f in fields)
    arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SyncEvent._meta.db_table} AS t SET {assignments}, processed_at = now(), updated_at = now() "  # noqa: S608
            f"FROM unnest(%s::bigint[], {arrays}) AS v(id, {', '.join(f.column for f in fields)}) WHERE t.id = v.id",
            [ids, *_columns_of(fields, events)],
        )


def activities_deleted_at(*, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], dt.datetime]:
    """When the app last deleted each (user_id, activity_type, external_id), for those it deleted."""
    if not keys:
        return {}
    user_ids, types, external_ids = (list(column) for column in zip(*keys, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT e.user_id, e.entity_type, e.external_id, max(e.occurred_at)
            FROM {SyncEvent._meta.db_table} e
            JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(user_id, entity_type, external_id)
                ON e.user_id = k.user_id AND e.entity_type = k.entity_type AND e.external_id = k.external_id
            WHERE e.direction = '{SyncDirection.INBOUND}' AND e.operation = 'delete'
                AND e.status = '{SyncStatus.SUCCESS}'
            GROUP BY 1, 2, 3
            """,  # noqa: S608 - names and constants from the model (crm_sync_app_deletes_idx's predicate)
            [user_ids, types, external_ids],
        )
        return {(user_id, kind, external_id): at for user_id, kind, external_id, at in cursor.fetchall()}


# --- Profiles -------------------------------------------------------------------------------------

_PROFILE_FIELDS = _inserted_fields(CrmUserProfile)


def profiles_insert_missing(*, user_id_hashes: dict[str, str]) -> dict[str, int]:
    """Create the profiles these users lack (model defaults), in user_id order; returns {user_id: id}.

    `user_id_hashes`: {user_id: its tombstone hash}. Users whose profile exists (or is being created
    by a concurrent request, which this waits for) are skipped without using a sequence value, and
    so are users erased since the batch's tombstone check (an erased id never comes back).
    """
    user_ids = sorted(user_id_hashes)
    profiles = [CrmUserProfile(user_id=user_id) for user_id in user_ids]
    table, tombstones = CrmUserProfile._meta.db_table, ErasureTombstone._meta.db_table
    sql = _rows_insert_sql(
        CrmUserProfile,
        _PROFILE_FIELDS,
        where=(
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} p WHERE p.user_id = v.user_id) "  # noqa: S608
            "AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[]) AS h(user_id, user_id_hash) "
            f"JOIN {tombstones} t ON t.user_id_hash = h.user_id_hash WHERE h.user_id = v.user_id)"
        ),
        order_by="ORDER BY v.user_id",
        tail="ON CONFLICT (user_id) DO NOTHING RETURNING id, user_id",
    )
    params = [*_columns_of(_PROFILE_FIELDS, profiles), user_ids, [user_id_hashes[u] for u in user_ids]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {user_id: pk for pk, user_id in cursor.fetchall()}


def profiles_lock(*, user_ids: list[str]) -> dict[str, CrmUserProfile]:
    """The users' profiles, rows locked FOR UPDATE in user_id order (no deadlock between batches)."""
    columns = ", ".join(f.column for f in CrmUserProfile._meta.concrete_fields)
    profiles = CrmUserProfile.objects.raw(
        f"SELECT {columns} FROM {CrmUserProfile._meta.db_table} "  # noqa: S608 - names from the model
        "WHERE user_id = ANY(%s) ORDER BY user_id FOR UPDATE",
        [sorted(user_ids)],
    )
    return {profile.user_id: profile for profile in profiles}


def profiles_last_active_forward(*, user_ids: list[str], times: list[dt.datetime]) -> None:
    """Move each user's last_active_at forward to the time given, never back (one UPDATE)."""
    if user_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {CrmUserProfile._meta.db_table} AS p SET last_active_at = v.at "  # noqa: S608
                "FROM unnest(%s::text[], %s::timestamptz[]) AS v(user_id, at) "
                "WHERE p.user_id = v.user_id AND (p.last_active_at IS NULL OR p.last_active_at < v.at)",
                [user_ids, times],
            )


# --- Activities -----------------------------------------------------------------------------------

_ACTIVITY_LOADED = [f for f in UserActivity._meta.concrete_fields if f.name != "embedding"]
_ACTIVITY_INSERTED = _inserted_fields(UserActivity, exclude=("embedding",))  # new rows: no embedding yet
_ACTIVITY_REPLACED = [
    f
    for f in UserActivity._meta.concrete_fields
    if f.name not in ("id", "user", "activity_type", "external_id", "embedding", *_STAMPS)
]


def activities_by_external_id(*, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], UserActivity]:
    """The stored activities of these (user_id, activity_type, external_id) keys, in one SELECT."""
    if not keys:
        return {}
    user_ids, types, external_ids = (list(column) for column in zip(*keys, strict=True))
    columns = ", ".join(f"a.{f.column}" for f in _ACTIVITY_LOADED)
    rows = UserActivity.objects.raw(
        f"SELECT {columns} FROM {UserActivity._meta.db_table} a "  # noqa: S608 - names from the model
        "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(user_id, activity_type, external_id) "
        "ON a.user_id = k.user_id AND a.activity_type = k.activity_type AND a.external_id = k.external_id "
        "AND a.external_id <> ''",  # the unique index on the external id is partial
        [user_ids, types, external_ids],
    )
    return {(row.user_id, row.activity_type, row.external_id): row for row in rows}


def activities_insert(*, activities: list[UserActivity]) -> list[int]:
    """INSERT new activities in one statement; returns their ids in the order given.

    PostgreSQL returns the rows of `INSERT ... SELECT FROM unnest(...) RETURNING` in the order the
    rows were produced, as Django's own bulk_create relies on.
    """
    if not activities:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _rows_insert_sql(UserActivity, _ACTIVITY_INSERTED, tail="RETURNING id"),
            _columns_of(_ACTIVITY_INSERTED, activities),
        )
        return [row[0] for row in cursor.fetchall()]


def activities_replace(*, activities: list[UserActivity]) -> None:
    """Write the app's new values over stored activities (embedding cleared) in one UPDATE."""
    if not activities:
        return
    fields = _ACTIVITY_REPLACED
    assignments = ", ".join(f"{f.column} = {_cast(f, f'v.{f.column}')}" for f in fields)
    arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {UserActivity._meta.db_table} AS t SET {assignments}, embedding = NULL, updated_at = now() "  # noqa: S608
            f"FROM unnest(%s::bigint[], {arrays}) AS v(id, {', '.join(f.column for f in fields)}) WHERE t.id = v.id",
            [[a.pk for a in activities], *_columns_of(fields, activities)],
        )


# --- Goals and audit ------------------------------------------------------------------------------


def users_active_goal_metrics(*, user_ids: list[str], metrics: list[str]) -> dict[str, set[str]]:
    """Per user, the metrics among `metrics` on which they have an active goal (one SELECT)."""
    found: dict[str, set[str]] = {}
    if not user_ids or not metrics:
        return found
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT user_id, metric FROM {HealthGoal._meta.db_table} "  # noqa: S608
            "WHERE user_id = ANY(%s) AND status = %s AND metric = ANY(%s)",
            [user_ids, GoalStatus.ACTIVE, metrics],
        )
        for user_id, metric in cursor.fetchall():
            found.setdefault(user_id, set()).add(metric)
    return found


_AUDIT_FIELDS = _inserted_fields(AuditLog)


def audit_rows_insert(*, rows: list[AuditLog]) -> None:
    """Append audit rows (built by compliance's rules, changes already redacted) in one INSERT."""
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(_rows_insert_sql(AuditLog, _AUDIT_FIELDS), _columns_of(_AUDIT_FIELDS, rows))
