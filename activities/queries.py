"""Raw SQL of the activities app (the webhook hot path). Column lists come from the model's `_meta`;
rows become model objects through `Model.from_db`, as the ORM's own loading does."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection, models, transaction

from activities.models import UserActivity
from profiles.models import CrmUserProfile
from sync.models import SyncDirection, SyncEvent, SyncStatus
from yahealthy_crm.sql import Statement, model_from_row, named_to_positional, prepared_cursor

_TABLE = UserActivity._meta.db_table
PROFILES_TABLE = CrmUserProfile._meta.db_table
# Every column but the embedding (a 256-float vector nobody on the hot path reads).
_LOADED_FIELDS = [f for f in UserActivity._meta.concrete_fields if f.name != "embedding"]
_LOADED_COLUMNS = ", ".join(f"a.{f.column}" for f in _LOADED_FIELDS)
_INSERTED_FIELDS = [f for f in UserActivity._meta.concrete_fields if f.name not in ("created_at", "updated_at")]
ACTIVITY_INSERT_SQL = (
    f"INSERT INTO {_TABLE} ({', '.join(f.column for f in _INSERTED_FIELDS)}, created_at, updated_at) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_INSERTED_FIELDS))}, now(), now()) RETURNING id"
)
# A new activity's id, reserved before its INSERT (the response and audit row name it).
ACTIVITY_ID_NEXTVAL_SQL = f"nextval(pg_get_serial_sequence('{_TABLE}', 'id'))"
# The partial indexes' own conditions are written out as literals (constants of the code): a
# prepared statement's generic plan can use a partial index only when the query states its
# predicate, not when parameters carry the same values.
# The app deleted this activity with a newer event (index-only on crm_sync_app_deletes_idx).
DELETED_LATER_SQL = f"""EXISTS (
            SELECT 1 FROM {SyncEvent._meta.db_table} e
            WHERE e.direction = '{SyncDirection.INBOUND}' AND e.operation = 'delete'
                AND e.status = '{SyncStatus.SUCCESS}' AND e.user_id = %(user_id)s AND e.entity_type = %(activity_type)s
                AND e.external_id = %(external_id)s AND e.occurred_at > %(occurred_at)s
        )"""  # noqa: S608 - names from the models
# The stored activity with this external id (crm_activity_unique_external_id).
_STORED_CONDITION_SQL = (
    "a.user_id = %(user_id)s AND a.activity_type = %(activity_type)s "
    "AND a.external_id = %(external_id)s AND a.external_id <> ''"
)
# One statement: a new id, the stored activity with this external id, and whether the app deleted it
# with a newer event.
ACTIVITY_EVENT_CONTEXT_SQL = f"""
    SELECT {ACTIVITY_ID_NEXTVAL_SQL}, {DELETED_LATER_SQL},
        {_LOADED_COLUMNS}
    FROM (SELECT 1) AS one
    LEFT JOIN {_TABLE} a ON {_STORED_CONDITION_SQL}
"""  # noqa: S608 - names from the models
# An activity create presumed new (`activity_apply_app_event(presumed_new_id=...)`): its INSERT skips
# a row stored with the same external id (the unique index's conflict), and a read in the same
# statement tells whether the presumption held: the row went in and no newer delete was applied.
_PRESUMED_NEW_CTE = "presumed_new_activity"
_PRESUMED_NEW_INSERT_SQL = ACTIVITY_INSERT_SQL.replace(
    " RETURNING id",
    " ON CONFLICT (user_id, activity_type, external_id) WHERE external_id <> '' DO NOTHING RETURNING id",
)
_PRESUMED_NEW_HELD_SQL, _PRESUMED_NEW_HELD_PARAMS = named_to_positional(
    f"SELECT EXISTS (SELECT 1 FROM {_PRESUMED_NEW_CTE}) AND NOT {DELETED_LATER_SQL}"  # noqa: S608
)


def activity_presumed_new_held(
    *, user_id: str, activity_type: str, external_id: str, occurred_at: dt.datetime
) -> Statement:
    """A scalar read, true when the presumed-new INSERT (`activity_insert_statement(presumed_new=True)`)
    of the same statement stored its row and the app did not delete this activity with a newer event:
    what `activity_event_context_get` would have found (nothing stored), on the statement's snapshot."""
    values = {
        "user_id": user_id,
        "activity_type": activity_type,
        "external_id": external_id,
        "occurred_at": occurred_at,
    }
    return Statement(_PRESUMED_NEW_HELD_SQL, [values[name] for name in _PRESUMED_NEW_HELD_PARAMS])


@dataclass(frozen=True)
class ActivityEventContext:
    new_id: int  # reserved for the row an event may create (unused ids are harmless gaps)
    existing: UserActivity | None
    deleted_later: bool


def activity_event_context_get(
    *, user_id: str, activity_type: str, external_id: str, occurred_at: dt.datetime
) -> ActivityEventContext:
    """What an app activity event needs to know before it applies, in one statement."""
    with prepared_cursor() as cursor:
        cursor.execute(
            ACTIVITY_EVENT_CONTEXT_SQL,
            {
                "user_id": user_id,
                "activity_type": activity_type,
                "external_id": external_id,
                "occurred_at": occurred_at,
            },
        )
        new_id, deleted_later, *values = cursor.fetchone()
    existing = None
    if values[0] is not None:  # the id column: a stored activity matched
        existing = model_from_row(UserActivity, _LOADED_FIELDS, values)
    return ActivityEventContext(new_id=new_id, existing=existing, deleted_later=deleted_later)


# Per inserted field: (field, attname, has an auto_now(_add) value, converts None). A None is NULL for
# every field here but the JSON one (whose None could mean JSON null), so it needs no conversion: most
# of a food log's columns are None, and a conversion call per column was a fifth of building the row.
_INSERT_PARAM_RULES = [
    (
        f,
        f.attname,
        bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)),
        isinstance(f, models.JSONField),
    )
    for f in _INSERTED_FIELDS
]


def activity_insert_statement(activity: UserActivity, *, presumed_new: bool = False) -> Statement:
    """The INSERT of a new activity whose id was reserved (`ActivityEventContext.new_id`); each value
    as the ORM's save would send it (`Field.get_db_prep_save`). `presumed_new`: the form that
    `activity_presumed_new_held` checks, run in the same statement."""
    params = []
    for field, attname, automatic, converts_none in _INSERT_PARAM_RULES:
        value = field.pre_save(activity, add=True) if automatic else getattr(activity, attname)
        params.append(None if value is None and not converts_none else field.get_db_prep_save(value, connection))
    if presumed_new:
        return Statement(_PRESUMED_NEW_INSERT_SQL, params, name=_PRESUMED_NEW_CTE)
    return Statement(ACTIVITY_INSERT_SQL, params)


# --- The embedding sweep's lock (activities/services.py "Embedding sweep") --------------------------

# An advisory lock of this app: a webhook event's transaction holds it shared from its claim to its
# commit; the sweep takes it exclusively to clear its flag, so it waits for every event transaction
# that may have seen the flag set (those skip scheduling a sweep: this one must read their rows).
EMBED_SWEEP_LOCK_KEY = 0x5941_4845_4D42  # "YAHEMB"


def embed_sweep_lock_take() -> None:
    """Take the sweep's lock exclusively until the transaction ends (waits for event transactions)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [EMBED_SWEEP_LOCK_KEY])


# --- Vectors (pgvector) ------------------------------------------------------------------------

VECTOR_SEARCH_TABLES = frozenset({"crm_user_activities", "crm_coaching_sessions"})


def vector_literal(vector: list[float]) -> str:
    """pgvector's text form of a vector, for raw SQL (`%s::vector`)."""
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"


def vector_search_exact(
    *, table: str, user_id: str, vector: list[float], limit: int, max_rows: int
) -> list[tuple[int, float]] | None:
    """Exact nearest rows of a user with at most `max_rows` vectors, else None.

    One pass: an index-only scan of the (user_id) INCLUDE (id, embedding) index reads at most
    max_rows + 1 of this user's vectors and turns each into its distance at once (so only ids and
    distances are counted and sorted). `+ 0` keeps the planner from ordering by the HNSW index
    (approximate, and it would walk everyone's vectors).
    """
    if table not in VECTOR_SEARCH_TABLES:
        raise ValueError(f"no vector search on {table}")
    literal = vector_literal(vector)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id, distance, count(*) OVER () AS candidates FROM (
                SELECT id, (embedding <=> %s::vector) + 0 AS distance
                FROM {table} WHERE user_id = %s AND embedding IS NOT NULL LIMIT %s
            ) mine
            ORDER BY distance, id LIMIT %s
            """,  # noqa: S608 - table is one of VECTOR_SEARCH_TABLES
            [literal, user_id, max_rows + 1, limit],
        )
        rows = cursor.fetchall()
    if rows and rows[0][2] > max_rows:
        return None
    return [(row_id, float(distance)) for row_id, distance, _ in rows]


def vector_search_hnsw(
    *,
    table: str,
    user_id: str,
    vector: list[float],
    limit: int,
    ef_search: int,
    max_scan_tuples: int,
    explain: bool = False,
):
    """(id, distance) of the user's rows nearest to `vector` on the HNSW index (or its EXPLAIN)."""
    if table not in VECTOR_SEARCH_TABLES:
        raise ValueError(f"no vector search on {table}")
    literal = vector_literal(vector)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(ef_search, limit))])
        cursor.execute("SELECT set_config('hnsw.max_scan_tuples', %s, true)", [str(max_scan_tuples)])
        sql = f"""
            WITH nearest AS MATERIALIZED (
                SELECT id, embedding <=> %s::vector AS distance
                FROM {table}
                WHERE user_id = %s AND embedding IS NOT NULL
                ORDER BY embedding <=> %s::vector
                LIMIT %s
            )
            SELECT id, distance FROM nearest ORDER BY distance, id
            """  # noqa: S608 - table is one of VECTOR_SEARCH_TABLES
        cursor.execute(("EXPLAIN " if explain else "") + sql, [literal, user_id, literal, limit])
        if explain:
            return "\n".join(row[0] for row in cursor.fetchall())
        return [(row_id, float(distance)) for row_id, distance in cursor.fetchall()]


def embeddings_store(model, batch, vectors, *, check_updated: bool) -> int:
    """One UPDATE for the whole batch; rows embedded or changed meanwhile are left alone, and so are
    rows of a user who withdrew AI consent meanwhile (the table has a `user_id` column)."""
    table = model._meta.db_table
    unchanged = " AND t.updated_at = v.updated_at" if check_updated else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS t SET embedding = v.embedding::vector
            FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v(id, embedding, updated_at)
            WHERE t.id = v.id AND t.embedding IS NULL{unchanged}
              AND EXISTS (
                SELECT 1 FROM {PROFILES_TABLE} AS p WHERE p.user_id = t.user_id AND p.consent_ai_processing
              )
            """,  # noqa: S608 - table and clause are constants
            [
                [row.pk for row in batch],
                [vector_literal(vector) for vector in vectors],
                [getattr(row, "updated_at", None) or row.created_at for row in batch],
            ],
        )
        return cursor.rowcount
