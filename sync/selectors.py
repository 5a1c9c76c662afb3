"""Reads of the sync app."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from compliance.selectors import user_is_erased
from sync.models import SyncDirection, SyncEvent, SyncStatus


def user_erased(*, user_id: str) -> bool:
    """True when the user was erased under GDPR (their events are refused with 410)."""
    return user_is_erased(user_id=user_id)


def deleted_after(*, user_id: str, entity_type: str, external_id: str, occurred_at: dt.datetime) -> bool:
    """Whether the app deleted this entity with an event newer than `occurred_at` (a late update is stale)."""
    return SyncEvent.objects.filter(
        direction=SyncDirection.INBOUND,
        user_id=user_id,
        entity_type=entity_type,
        external_id=external_id,
        operation="delete",
        status=SyncStatus.SUCCESS,
        occurred_at__gt=occurred_at,
    ).exists()


def dead_letters_get() -> QuerySet[SyncEvent]:
    return SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND, status=SyncStatus.DEAD_LETTER)
