"""Raw SQL of the profiles app (the webhook hot path). Column lists come from the model's `_meta`;
rows become model objects through `Model.from_db`, as the ORM's own loading does."""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection

from profiles.models import CrmUserProfile
from yahealthy_crm.sql import ANY_OF_JSON_TEXT, Statement, document_cursor, model_from_row

PROFILE_TABLE = CrmUserProfile._meta.db_table
PROFILE_FIELDS = list(CrmUserProfile._meta.concrete_fields)
PROFILE_COLUMNS = ", ".join(f.column for f in PROFILE_FIELDS)
_PROFILE_FOR_UPDATE_SQL = f"SELECT {PROFILE_COLUMNS} FROM {PROFILE_TABLE} WHERE user_id = %s FOR UPDATE"  # noqa: S608
_LAST_ACTIVE_SQL = (
    f"UPDATE {PROFILE_TABLE} SET last_active_at = %s "  # noqa: S608
    "WHERE id = %s AND (last_active_at IS NULL OR last_active_at < %s) RETURNING id"
)


_PROFILES_LOCK_SQL = (
    f"SELECT user_id FROM {PROFILE_TABLE} "  # noqa: S608 - names from the model
    f"WHERE user_id = {ANY_OF_JSON_TEXT} ORDER BY user_id FOR UPDATE"
)


def profiles_lock(*, user_ids: list[str]) -> set[str]:
    """Lock the users' profile rows FOR UPDATE, in user_id order; returns the user ids whose profile exists.

    The rule of every transaction that writes rows of several users (a webhook batch, a churn or
    lifecycle job's chunk): lock their profiles first, with this, so that they all take the locks in
    one order and never deadlock. A single user's writers lock just that profile. An UPDATE of many
    profiles locks them in whatever order its plan scans them (the churn job deadlocked with webhook
    batches under load: bench/load.py).
    """
    with document_cursor() as cursor:
        cursor.execute(_PROFILES_LOCK_SQL, [json.dumps(sorted(user_ids))])
        return {row[0] for row in cursor.fetchall()}


def profile_from_row(values: list | tuple) -> CrmUserProfile:
    """A profile from a row of PROFILE_COLUMNS (in that order)."""
    return model_from_row(CrmUserProfile, PROFILE_FIELDS, values)


def profile_locked_get(*, user_id: str) -> CrmUserProfile | None:
    """The profile, its row locked (FOR UPDATE) until the caller's transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(_PROFILE_FOR_UPDATE_SQL, [user_id])
        row = cursor.fetchone()
    return profile_from_row(row) if row else None


def last_active_statement(*, profile_id: int, occurred_at: dt.datetime) -> Statement:
    """Move last_active_at forward to `occurred_at`, never back (the WHERE re-checks it)."""
    return Statement(_LAST_ACTIVE_SQL, [occurred_at, profile_id, occurred_at])
