"""Transactional outbox: a CRM-side change the app must learn, recorded in the caller's transaction.

The domains call `outbox_record()` inside the transaction of their change, so the outbound event
exists exactly when the change does; delivery is enqueued after commit (sync/delivery.py does the
HTTP work). Imports only the sync models, compliance and the platform's queue helper: the domains
sit above this module and never import the sync engine.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone

from compliance.pii import redact_pii_data
from sync.models import SyncDirection, SyncEvent, SyncStatus
from yahealthy_crm.actors import ActorType
from yahealthy_crm.queue import task_enqueue_on_commit

DELIVER_TASK = "sync.tasks.sync_event_deliver_task"


def request_hash_compute(data: Any) -> str:
    """SHA-256 of the canonical JSON of `data` (replay checks inbound, body hash outbound)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _outbound_event(
    *,
    user_id: str,
    entity_type: str,
    operation: str,
    entity_id: str | int,
    data: dict[str, Any],
    origin: str,
    stored_user_id: str | None,
) -> SyncEvent:
    """The unsaved outbound SyncEvent of one change (body built and hashed, status by configuration)."""
    now = timezone.now()
    webhook_id = f"msg_{uuid.uuid4().hex}"
    body = {
        "type": f"{entity_type}.{operation}",
        "timestamp": now.isoformat(),
        "data": {
            "userId": user_id,
            "entityType": entity_type,
            "operation": operation,
            "entityId": str(entity_id),
            "origin": str(origin),
            **json.loads(json.dumps(redact_pii_data(data), default=str)),
        },
    }
    pending = bool(settings.APP_WEBHOOK_URL)
    return SyncEvent(
        direction=SyncDirection.OUTBOUND,
        user_id=user_id if stored_user_id is None else stored_user_id,
        entity_type=entity_type,
        operation=operation,
        external_id=str(entity_id),
        idempotency_key=f"outbound:{webhook_id}",
        request_hash=request_hash_compute(body),
        status=SyncStatus.PENDING if pending else SyncStatus.SKIPPED,
        payload=body,
        webhook_id=webhook_id,
        occurred_at=now,
        next_attempt_at=now if pending else None,
        error="" if pending else "APP_WEBHOOK_URL is not configured.",
    )


def outbox_record(
    *,
    user_id: str,
    entity_type: str,
    operation: str,
    entity_id: str | int,
    data: dict[str, Any],
    origin: str = ActorType.STAFF,
    stored_user_id: str | None = None,
) -> SyncEvent | None:
    """Record a CRM-side change the app must learn and deliver it after commit.

    `origin` is who made the change; changes that came from the app are never echoed back (None).
    Without APP_WEBHOOK_URL the event is recorded as `skipped` (nothing is lost: staff can retry it
    once a URL is configured).

    `stored_user_id` replaces `user_id` in the stored row's `user_id` column (the body always
    carries `user_id`). GDPR erasure passes the tombstone's pseudonymous hash: the app needs the raw
    id to erase on its side, but the row outlives the user, and a raw id in that column would name
    the erased user again and put the row back in every per-user query (export, erase, admin 360).
    Delivery replaces the body's raw id with the stored one once the app has it
    (sync/delivery.py), so only an undelivered event still holds it, for its retries.
    """
    if origin == ActorType.APP:
        return None
    (event,) = _outbox_insert(
        [
            _outbound_event(
                user_id=user_id,
                entity_type=entity_type,
                operation=operation,
                entity_id=entity_id,
                data=data,
                origin=origin,
                stored_user_id=stored_user_id,
            )
        ]
    )
    return event


def outbox_record_many(
    *, entity_type: str, operation: str, records: list[tuple[str, str | int, dict[str, Any]]], origin: str
) -> list[SyncEvent]:
    """`outbox_record` for many changes of one kind at once: `records` are (user_id, entity_id, data).

    One INSERT for all rows (bulk jobs); each event is still delivered on its own after commit.
    """
    if origin == ActorType.APP or not records:
        return []
    return _outbox_insert(
        [
            _outbound_event(
                user_id=user_id,
                entity_type=entity_type,
                operation=operation,
                entity_id=entity_id,
                data=data,
                origin=origin,
                stored_user_id=None,
            )
            for user_id, entity_id, data in records
        ]
    )


def _outbox_insert(events: list[SyncEvent]) -> list[SyncEvent]:
    """One INSERT for the events; each pending one is enqueued for delivery after commit."""
    events = SyncEvent.objects.bulk_create(events)
    for event in events:
        if event.status == SyncStatus.PENDING:
            # A lost message stays `pending`; the beat job `sync_outbound_requeue_stuck_task` resends it.
            task_enqueue_on_commit(DELIVER_TASK, args=[event.pk])
    return events
