"""Reads of the sync app."""

from __future__ import annotations

from django.db.models import QuerySet

from sync.models import SyncDirection, SyncEvent, SyncStatus


def dead_letters_get() -> QuerySet[SyncEvent]:
    return SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND, status=SyncStatus.DEAD_LETTER)
