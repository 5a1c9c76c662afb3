"""Raw SQL of the profiles app (the webhook hot path). Column lists come from the model's `_meta`;
rows become model objects through `Model.from_db`, as the ORM's own loading does."""

from __future__ import annotations

import datetime as dt

from django.db import connection

from profiles.models import CrmUserProfile
from yahealthy_crm.sql import Statement, model_from_row

PROFILE_TABLE = CrmUserProfile._meta.db_table
PROFILE_FIELDS = list(CrmUserProfile._meta.concrete_fields)
PROFILE_COLUMNS = ", ".join(f.column for f in PROFILE_FIELDS)
_PROFILE_FOR_UPDATE_SQL = f"SELECT {PROFILE_COLUMNS} FROM {PROFILE_TABLE} WHERE user_id = %s FOR UPDATE"  # noqa: S608
_LAST_ACTIVE_SQL = (
    f"UPDATE {PROFILE_TABLE} SET last_active_at = %s "  # noqa: S608
    "WHERE id = %s AND (last_active_at IS NULL OR last_active_at < %s) RETURNING id"
)


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
