"""Reads of the sync app."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import QuerySet

from sync.models import SyncDirection, SyncEvent, SyncStatus


def deleted_after(*, user_id: str, entity_type: str, external_id: str, occurred_at: dt.datetime) -> bool:
    """Whether the app deleted this entity with an event newer than `occurred_at` (a late update is stale)."""
    # Raw SQL: on the webhook hot path (every create), see bench/webhook_ingest.py.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT EXISTS (
                SELECT 1 FROM {SyncEvent._meta.db_table}
                WHERE user_id = %s AND direction = %s AND entity_type = %s AND external_id = %s
                    AND operation = 'delete' AND status = %s AND occurred_at > %s
            )
            """,  # noqa: S608 - the table name is a constant
            [user_id, SyncDirection.INBOUND, entity_type, external_id, SyncStatus.SUCCESS, occurred_at],
        )
        return cursor.fetchone()[0]


def dead_letters_get() -> QuerySet[SyncEvent]:
    return SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND, status=SyncStatus.DEAD_LETTER)
