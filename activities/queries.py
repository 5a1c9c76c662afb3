"""Raw SQL of the activities app (the webhook hot path). Column lists come from the model's `_meta`;
rows become model objects through `Model.from_db`, as the ORM's own loading does."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection

from activities.models import UserActivity
from sync.models import SyncDirection, SyncEvent, SyncStatus
from yahealthy_crm.sql import Statement, model_from_row

_TABLE = UserActivity._meta.db_table
# Every column but the embedding (a 384-float vector nobody on the hot path reads).
_LOADED_FIELDS = [f for f in UserActivity._meta.concrete_fields if f.name != "embedding"]
_LOADED_COLUMNS = ", ".join(f"a.{f.column}" for f in _LOADED_FIELDS)
_INSERTED_FIELDS = [f for f in UserActivity._meta.concrete_fields if f.name not in ("created_at", "updated_at")]
ACTIVITY_INSERT_SQL = (
    f"INSERT INTO {_TABLE} ({', '.join(f.column for f in _INSERTED_FIELDS)}, created_at, updated_at) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_INSERTED_FIELDS))}, now(), now()) RETURNING id"
)
# One statement: a new id, the stored activity with this external id, and whether the app deleted it
# with a newer event (index-only on crm_sync_app_deletes_idx).
ACTIVITY_EVENT_CONTEXT_SQL = f"""
    SELECT nextval(pg_get_serial_sequence('{_TABLE}', 'id')),
        EXISTS (
            SELECT 1 FROM {SyncEvent._meta.db_table} e
            WHERE e.user_id = %(user_id)s AND e.direction = %(inbound)s AND e.entity_type = %(activity_type)s
                AND e.external_id = %(external_id)s AND e.operation = 'delete' AND e.status = %(success)s
                AND e.occurred_at > %(occurred_at)s
        ),
        {_LOADED_COLUMNS}
    FROM (SELECT 1) AS one
    LEFT JOIN {_TABLE} a ON a.user_id = %(user_id)s AND a.activity_type = %(activity_type)s
        AND a.external_id = %(external_id)s AND %(external_id)s <> ''
"""  # noqa: S608 - names from the models


@dataclass(frozen=True)
class ActivityEventContext:
    new_id: int  # reserved for the row an event may create (unused ids are harmless gaps)
    existing: UserActivity | None
    deleted_later: bool


def activity_event_context_get(
    *, user_id: str, activity_type: str, external_id: str, occurred_at: dt.datetime
) -> ActivityEventContext:
    """What an app activity event needs to know before it applies, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            ACTIVITY_EVENT_CONTEXT_SQL,
            {
                "user_id": user_id,
                "activity_type": activity_type,
                "external_id": external_id,
                "occurred_at": occurred_at,
                "inbound": SyncDirection.INBOUND,
                "success": SyncStatus.SUCCESS,
            },
        )
        new_id, deleted_later, *values = cursor.fetchone()
    existing = None
    if values[0] is not None:  # the id column: a stored activity matched
        existing = model_from_row(UserActivity, _LOADED_FIELDS, values)
    return ActivityEventContext(new_id=new_id, existing=existing, deleted_later=deleted_later)


def activity_insert_statement(activity: UserActivity) -> Statement:
    """The INSERT of a new activity whose id was reserved (`ActivityEventContext.new_id`)."""
    return Statement(
        ACTIVITY_INSERT_SQL,
        [f.get_db_prep_save(f.pre_save(activity, add=True), connection) for f in _INSERTED_FIELDS],
    )
