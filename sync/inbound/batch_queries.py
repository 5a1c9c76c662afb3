"""The SQL of the batch intake (sync.inbound.batch): one statement per table and step, whatever the
number of events. Rows are plain dicts keyed by the fields' attnames (fields left out take the
model's default). New rows that need no ON CONFLICT go in with COPY (`_rows_copy`); the other
statements carry their rows as one JSON document, expanded in SQL (`json_to_recordset`). Column
lists and SQL types come from the models' `_meta`.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import DateField, DecimalField, JSONField, Model
from django.utils import timezone

from activities.models import ACTIVITY_COLUMNS, UserActivity
from compliance.models import AuditLog, ErasureTombstone
from goals.models import GoalStatus, HealthGoal
from profiles.models import CrmUserProfile
from sync.models import SyncDirection, SyncEvent, SyncStatus
from yahealthy_crm.sql import ANY_OF_JSON_TEXT, document_cursor, rows_copy

_STAMPS = ("created_at", "updated_at")  # now(): in SQL the database's, in a COPY Python's (as the ORM)


def _json_text(value):
    """A date, datetime or decimal column value as the text its SQL type reads back exactly."""
    if isinstance(value, Decimal):
        return str(value)
    return value.isoformat() if isinstance(value, dt.date) else value  # a datetime is a date


def _rows_json(fields: list, rows: list[dict]) -> str:
    """The rows as one JSON array of objects keyed by attname; a field a row leaves out takes its default.

    Dates, datetimes and decimals of the typed columns go as their text (full precision, cast in
    SQL); JSON columns are nested as they are, encoded as the JSON fields themselves encode them
    (DjangoJSONEncoder).
    """
    defaults = {f.attname: f.get_default() for f in fields}
    typed = [f.attname for f in fields if isinstance(f, DateField | DecimalField)]  # DateTimeField is a DateField
    document = []
    for row in rows:
        values = {**defaults, **row}
        for name in typed:
            if values[name] is not None:
                values[name] = _json_text(values[name])
        document.append(values)
    return _json_document(document)


_DJANGO_JSON = DjangoJSONEncoder()


def _json_document(document: list) -> str:
    return _json_bytes(document).decode()


def _json_bytes(value) -> bytes:
    """JSON of a batch's rows or of one JSON column: orjson, with dates, times and decimals encoded as
    Django's own encoder does (the JSON fields' encoder); json.dumps for what orjson refuses (an
    integer beyond 64 bits in a payload, say). Encoding the documents was a quarter of the batch's
    Python time."""
    try:
        return orjson.dumps(value, default=_DJANGO_JSON.default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except orjson.JSONEncodeError:
        return json.dumps(value, cls=DjangoJSONEncoder).encode()


def _rows_copy(model: type[Model], fields: list, rows: list[dict], *, now: dt.datetime | None = None) -> int:
    """COPY the rows (dicts by attname; a field left out takes its default) into the model's table,
    stamped `now` (default: now, as the ORM stamps them); JSON columns encoded as `_json_bytes` does
    (None is NULL).

    Values psycopg adapts slowly go as the text their column reads back exactly: JSON as its text
    (psycopg's Jsonb wrapper calls back into Python per value), dates and datetimes as ISO 8601, each
    distinct value formatted once (a batch's rows share their stamps). psycopg's own formatting took
    about 4 us per datetime and 2-6 us per JSON value: a third of the COPY's Python time.
    """
    defaults = {f.attname: f.get_default() for f in fields}
    names = [f.attname for f in fields]
    json_names = {f.attname for f in fields if isinstance(f, JSONField)}
    temporal_names = {f.attname for f in fields if isinstance(f, DateField)}  # DateTimeField is a DateField
    stamps = [f.column for f in model._meta.concrete_fields if f.name in _STAMPS]
    iso_texts: dict = {}

    def iso(value: dt.date) -> str:
        key = (type(value), value)  # a date never shares a datetime's text
        text = iso_texts.get(key)
        if text is None:
            text = iso_texts[key] = _json_text(value)
        return text

    stamp_values = [iso(now or timezone.now())] * len(stamps)

    def values(row: dict) -> list:
        row = {**defaults, **row}
        for name in json_names:
            if row[name] is not None:
                row[name] = _json_bytes(row[name]).decode()
        for name in temporal_names:
            if isinstance(row[name], dt.date):
                row[name] = iso(row[name])
        return [*(row[name] for name in names), *stamp_values]

    return rows_copy(model._meta.db_table, [*(f.column for f in fields), *stamps], [values(row) for row in rows])


def _model_rows(fields: list, objects: list[Model]) -> list[dict]:
    return [{f.attname: getattr(obj, f.attname) for f in fields} for obj in objects]


def _recordset(fields: list, *, keys: str = "", alias: str = "v") -> str:
    """`json_to_recordset(%s::json) AS v(...)`: JSON columns as jsonb, the others as text (cast by `_value`)."""
    columns = ", ".join([*([keys] if keys else []), *(f"{f.attname} {_record_type(f)}" for f in fields)])
    return f"json_to_recordset(%s::json) AS {alias}({columns})"


def _record_type(field) -> str:
    return "jsonb" if isinstance(field, JSONField) else "text"


def _value(field, alias: str = "v") -> str:
    """The row's value as the column's type: an explicit cast, as the former `::type[]` arrays had
    (a varchar(n) cast truncates, a numeric(p, s) cast rounds)."""
    value = f"{alias}.{field.attname}"
    return value if isinstance(field, JSONField) else f"{value}::{field.db_type(connection)}"


def _ids_reserved(model: type[Model]) -> str:
    """`ARRAY(...)` of %s new ids from the model's id sequence (its name looked up once, not per id)."""
    sequence = f"pg_get_serial_sequence('{model._meta.db_table}', '{model._meta.pk.column}')"
    return f"ARRAY(SELECT nextval(seq) FROM CAST({sequence} AS regclass) AS seq, generate_series(1, %s))"  # noqa: S608


# Activity keys (user_id, activity_type, external_id) as a recordset.
_ACTIVITY_KEYS = "user_id text, activity_type text, external_id text"


def _keys_json(keys: list[tuple[str, str, str]]) -> str:
    return json.dumps([{"user_id": u, "activity_type": t, "external_id": e} for u, t, e in keys])


def _inserted_fields(model: type[Model], exclude: tuple[str, ...] = ()) -> list:
    return [
        f for f in model._meta.concrete_fields if not f.primary_key and f.name not in _STAMPS and f.name not in exclude
    ]


def _rows_insert_sql(model: type[Model], fields: list, *, tail: str = "", where: str = "", order_by: str = "") -> str:
    """INSERT ... SELECT FROM json_to_recordset(<the rows as one JSON document>): any number of rows, one statement."""
    stamps = [f.column for f in model._meta.concrete_fields if f.name in _STAMPS]
    columns = ", ".join([*(f.column for f in fields), *stamps])
    selected = ", ".join([*(_value(f) for f in fields), *(["now()"] * len(stamps))])
    return (
        f"INSERT INTO {model._meta.db_table} ({columns}) "  # noqa: S608 - names from the model
        f"SELECT {selected} FROM {_recordset(fields)} {where} {order_by} {tail}"
    )


def _rows_update_sql(model: type[Model], fields: list, *, also: str = "") -> str:
    """UPDATE ... FROM json_to_recordset(<rows with their id>): each row's fields, one statement."""
    assignments = ", ".join(f"{f.column} = {_value(f)}" for f in fields)
    return (
        f"UPDATE {model._meta.db_table} AS t SET {assignments}{also}, updated_at = now() "  # noqa: S608
        f"FROM {_recordset(fields, keys='id bigint')} WHERE t.id = v.id"
    )


# --- Tombstones -----------------------------------------------------------------------------------


def tombstones_and_profiles_find(*, user_id_hashes: dict[str, str]) -> tuple[set[str], set[str]]:
    """Of these users ({user_id: tombstone hash}), the hashes of the erased ones and the ids of those
    with a profile, in one SELECT."""
    with document_cursor() as cursor:
        cursor.execute(
            f"SELECT ARRAY(SELECT user_id_hash FROM {ErasureTombstone._meta.db_table} "  # noqa: S608
            f"WHERE user_id_hash = {ANY_OF_JSON_TEXT}), "
            f"ARRAY(SELECT user_id FROM {CrmUserProfile._meta.db_table} WHERE user_id = {ANY_OF_JSON_TEXT})",
            [json.dumps(sorted(set(user_id_hashes.values()))), json.dumps(sorted(user_id_hashes))],
        )
        erased, with_profile = cursor.fetchone()
    return set(erased), set(with_profile)


# --- Sync events ----------------------------------------------------------------------------------

_CLAIM_FIELDS = _inserted_fields(SyncEvent)


def sync_events_claim(*, events: list[dict], lock_timeout: str) -> dict[str, int]:
    """INSERT the events' rows (dicts of SyncEvent fields) in one statement, skipping keys that exist;
    returns {key: id} of the new.

    Rows go in in key order, so two batches sharing keys wait for each other in one order (no
    deadlock). `lock_timeout` (SET LOCAL, for the rest of the transaction) bounds the wait for a key
    another request holds uncommitted: past it the statement fails with OperationalError.
    """
    sql = _keyed_insert_sql(_CLAIM_FIELDS, returning=" RETURNING id, idempotency_key")
    with document_cursor() as cursor:
        cursor.execute(sql, [_rows_json(_CLAIM_FIELDS, events), lock_timeout])
        return {key: pk for pk, key in cursor.fetchall()}


def _keyed_insert_sql(fields: list, *, returning: str = "") -> str:
    """Events' rows inserted in key order (two transactions sharing keys wait for each other in one
    order), skipping keys that exist, with the transaction's lock_timeout (the second parameter) set
    first: the bound of the wait for a key another request holds uncommitted."""
    return _rows_insert_sql(
        SyncEvent,
        fields,
        where=", (SELECT set_config('lock_timeout', %s, true)) AS key_wait",
        order_by='ORDER BY v.idempotency_key COLLATE "C"',  # code point order, as `sorted` (COPY)
        tail=f"ON CONFLICT (idempotency_key) DO NOTHING{returning}",
    )


# A batch presumed new (sync.inbound.batch "_apply_presumed_new"): its events' rows are written once,
# finished, with ids reserved up front, instead of claimed and then updated.
_NEW_KEYS_RESERVE_SQL = f"""
    SELECT set_config('lock_timeout', %s, true),
        EXISTS (SELECT 1 FROM {SyncEvent._meta.db_table} WHERE idempotency_key = {ANY_OF_JSON_TEXT}),
        {_ids_reserved(SyncEvent)}
"""  # noqa: S608 - names from the model
_FINISHED_ROW_FIELDS = [SyncEvent._meta.pk, *_CLAIM_FIELDS]


def sync_events_new_keys_reserve(*, keys: list[str], lock_timeout: str) -> list[int] | None:
    """When no event with any of these keys is stored: one new id per key, in order; else None.

    Sets the transaction's lock_timeout too (as `sync_events_claim`). A key another request holds
    uncommitted is not seen here: `sync_events_insert_finished` finds it.
    """
    with document_cursor() as cursor:
        cursor.execute(_NEW_KEYS_RESERVE_SQL, [lock_timeout, json.dumps(keys), len(keys)])
        _, stored, ids = cursor.fetchone()
    return None if stored else ids


def sync_events_insert_finished(*, events: list[dict], processed_at: dt.datetime, lock_timeout: str) -> None:
    """COPY finished rows (dicts of SyncEvent fields with their reserved `id`) in key order, created
    when processed (one instant), after setting the transaction's lock_timeout (one statement more; a
    COPY cannot set it).

    A key stored by now raises IntegrityError; a key another request holds uncommitted is waited
    for at most `lock_timeout` (then OperationalError). Either way the statement failed: the
    caller's savepoint must be rolled back.
    """
    with document_cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
    ordered = sorted(events, key=lambda row: row["idempotency_key"])
    _rows_copy(SyncEvent, _FINISHED_ROW_FIELDS, ordered, now=processed_at)


def sync_events_insert(*, events: list[dict]) -> None:
    """INSERT rows (rejected events: their keys are unique placeholders) in one statement."""
    if events:
        with document_cursor() as cursor:
            cursor.execute(_rows_insert_sql(SyncEvent, _CLAIM_FIELDS), [_rows_json(_CLAIM_FIELDS, events)])


def sync_events_delete(*, ids: list[int]) -> None:
    """Remove claimed rows whose events store nothing after all (their user was erased meanwhile)."""
    with document_cursor() as cursor:
        cursor.execute(f"DELETE FROM {SyncEvent._meta.db_table} WHERE id = ANY(%s)", [ids])  # noqa: S608


def sync_events_by_key(*, keys: list[str]) -> dict[str, SyncEvent]:
    return {event.idempotency_key: event for event in SyncEvent.objects.filter(idempotency_key__in=keys)}


_FINISHED_FIELDS = [
    SyncEvent._meta.get_field(name)
    for name in ("idempotency_key", "status", "error", "conflicts", "response_body", "response_status")
]


def sync_events_finish(*, events: list[dict]) -> None:
    """Store each claimed event's outcome and response in one UPDATE (a rejected one frees its key).

    `events`: per claimed event its `id` and the finished fields (idempotency_key, status, error,
    conflicts, response_body, response_status).
    """
    with document_cursor() as cursor:
        cursor.execute(
            _rows_update_sql(SyncEvent, _FINISHED_FIELDS, also=", processed_at = now()"),
            [_rows_json(_FINISHED_FIELDS, events)],
        )


def activities_deleted_at(*, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], dt.datetime]:
    """When the app last deleted each (user_id, activity_type, external_id), for those it deleted."""
    if not keys:
        return {}
    with document_cursor() as cursor:
        cursor.execute(
            f"""
            SELECT e.user_id, e.entity_type, e.external_id, max(e.occurred_at)
            FROM {SyncEvent._meta.db_table} e
            JOIN json_to_recordset(%s::json) AS k({_ACTIVITY_KEYS})
                ON e.user_id = k.user_id AND e.entity_type = k.activity_type AND e.external_id = k.external_id
            WHERE e.direction = '{SyncDirection.INBOUND}' AND e.operation = 'delete'
                AND e.status = '{SyncStatus.SUCCESS}'
            GROUP BY 1, 2, 3
            """,  # noqa: S608 - names and constants from the model (crm_sync_app_deletes_idx's predicate)
            [_keys_json(keys)],
        )
        return {(user_id, kind, external_id): at for user_id, kind, external_id, at in cursor.fetchall()}


# --- Profiles -------------------------------------------------------------------------------------

_PROFILE_USER_ID = CrmUserProfile._meta.get_field("user_id")
_PROFILE_DEFAULTED = [f for f in _inserted_fields(CrmUserProfile) if f is not _PROFILE_USER_ID]


def profiles_insert_missing(*, user_id_hashes: dict[str, str]) -> dict[str, int]:
    """Create the profiles these users lack (model defaults), in user_id order; returns {user_id: id}.

    `user_id_hashes`: {user_id: its tombstone hash}. Users whose profile exists (or is being created
    by a concurrent request, which this waits for) are skipped without using a sequence value, and
    so are users erased since the batch's tombstone check (an erased id never comes back).
    """
    table, tombstones = CrmUserProfile._meta.db_table, ErasureTombstone._meta.db_table
    stamps = [f.column for f in CrmUserProfile._meta.concrete_fields if f.name in _STAMPS]
    columns = ", ".join([_PROFILE_USER_ID.column, *(f.column for f in _PROFILE_DEFAULTED), *stamps])
    selected = ", ".join(
        [_value(_PROFILE_USER_ID, "u"), *(_value(f, "d") for f in _PROFILE_DEFAULTED), *(["now()"] * len(stamps))]
    )
    users = _recordset([_PROFILE_USER_ID], keys="user_id_hash text", alias="u")
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {selected} "  # noqa: S608 - names from the model
        f"FROM {users} CROSS JOIN {_recordset(_PROFILE_DEFAULTED, alias='d')} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} p WHERE p.user_id = u.user_id) "
        f"AND NOT EXISTS (SELECT 1 FROM {tombstones} t WHERE t.user_id_hash = u.user_id_hash) "
        "ORDER BY u.user_id ON CONFLICT (user_id) DO NOTHING RETURNING id, user_id"
    )
    rows = [{"user_id": user_id, "user_id_hash": user_id_hashes[user_id]} for user_id in sorted(user_id_hashes)]
    with document_cursor() as cursor:
        cursor.execute(sql, [_rows_json([_PROFILE_USER_ID], rows), _rows_json(_PROFILE_DEFAULTED, [{}])])
        return {user_id: pk for pk, user_id in cursor.fetchall()}


def profiles_by_user_id(*, user_ids: list[str]) -> dict[str, CrmUserProfile]:
    """The users' profiles as model objects (rows the batch has locked), for the domains' apply functions."""
    return {profile.user_id: profile for profile in CrmUserProfile.objects.filter(user_id__in=user_ids)}


def profiles_last_active_forward(*, last_active: dict[str, dt.datetime]) -> None:
    """Move each user's last_active_at forward to the time given, never back (one UPDATE)."""
    if last_active:
        rows = [{"user_id": user_id, "at": at.isoformat()} for user_id, at in last_active.items()]
        with document_cursor() as cursor:
            cursor.execute(
                f"UPDATE {CrmUserProfile._meta.db_table} AS p SET last_active_at = v.at::timestamptz "  # noqa: S608
                "FROM json_to_recordset(%s::json) AS v(user_id text, at text) "
                "WHERE p.user_id = v.user_id AND (p.last_active_at IS NULL OR p.last_active_at < v.at::timestamptz)",
                [json.dumps(rows)],
            )


# --- Activities -----------------------------------------------------------------------------------

# What the batch reads of a stored activity: its identity, when the app last changed it, its typed columns.
_ACTIVITY_LOADED = [
    UserActivity._meta.get_field(name)
    for name in ("id", "user", "activity_type", "external_id", "source_updated_at", *ACTIVITY_COLUMNS)
]
_ACTIVITY_COPIED = [UserActivity._meta.pk, *_inserted_fields(UserActivity, exclude=("embedding",))]  # none yet
_ACTIVITY_REPLACED = [
    f
    for f in UserActivity._meta.concrete_fields
    if f.name not in ("id", "user", "activity_type", "external_id", "embedding", *_STAMPS)
]


def activities_by_external_id(*, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], dict]:
    """The stored activities of these (user_id, activity_type, external_id) keys, in one SELECT: per key
    a dict of the row's id, key fields, source_updated_at and typed columns (by attname)."""
    if not keys:
        return {}
    columns = ", ".join(f"a.{f.column}" for f in _ACTIVITY_LOADED)
    names = [f.attname for f in _ACTIVITY_LOADED]
    with document_cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {UserActivity._meta.db_table} a "  # noqa: S608 - names from the model
            f"JOIN json_to_recordset(%s::json) AS k({_ACTIVITY_KEYS}) "
            "ON a.user_id = k.user_id AND a.activity_type = k.activity_type AND a.external_id = k.external_id "
            "AND a.external_id <> ''",  # the unique index on the external id is partial
            [_keys_json(keys)],
        )
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    return {(row["user_id"], row["activity_type"], row["external_id"]): row for row in rows}


_ACTIVITY_IDS_RESERVE_SQL = f"SELECT {_ids_reserved(UserActivity)}"


def activities_insert(*, activities: list[dict]) -> list[int]:
    """INSERT new activities (dicts of UserActivity fields by attname); returns their ids in the
    order given. Two statements whatever the number: the ids reserved from the table's sequence,
    then the rows COPYed with them (a COPY returns nothing)."""
    if not activities:
        return []
    with document_cursor() as cursor:
        cursor.execute(_ACTIVITY_IDS_RESERVE_SQL, [len(activities)])
        ids = cursor.fetchone()[0]
    _rows_copy(
        UserActivity,
        _ACTIVITY_COPIED,
        [{**row, "id": pk} for row, pk in zip(activities, ids, strict=True)],
    )
    return ids


def activities_replace(*, activities: list[dict]) -> None:
    """Write the app's new values over stored activities (embedding cleared) in one UPDATE.

    `activities`: the rows as `activities_by_external_id` read them (with `id`), their values
    replaced; the replaceable fields they carry are written, the others are left as stored.
    """
    if not activities:
        return
    fields = [f for f in _ACTIVITY_REPLACED if f.attname in activities[0]]
    with document_cursor() as cursor:
        cursor.execute(
            _rows_update_sql(UserActivity, fields, also=", embedding = NULL"), [_rows_json(fields, activities)]
        )


# --- Goals and audit ------------------------------------------------------------------------------


def users_active_goal_metrics(*, user_ids: list[str], metrics: list[str]) -> dict[str, set[str]]:
    """Per user, the metrics among `metrics` on which they have an active goal (one SELECT)."""
    found: dict[str, set[str]] = {}
    if not user_ids or not metrics:
        return found
    with document_cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT user_id, metric FROM {HealthGoal._meta.db_table} "  # noqa: S608
            f"WHERE user_id = {ANY_OF_JSON_TEXT} AND status = %s AND metric = ANY(%s)",
            [json.dumps(user_ids), GoalStatus.ACTIVE, metrics],
        )
        for user_id, metric in cursor.fetchall():
            found.setdefault(user_id, set()).add(metric)
    return found


_AUDIT_FIELDS = _inserted_fields(AuditLog)


def audit_rows_insert(*, rows: list[AuditLog]) -> None:
    """Append audit rows (built by compliance's rules, changes already redacted) in one COPY."""
    if rows:
        _rows_copy(AuditLog, _AUDIT_FIELDS, _model_rows(_AUDIT_FIELDS, rows))
