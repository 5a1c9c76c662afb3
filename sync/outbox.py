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


def outbox_record(
    *,
    user_id: str,
    entity_type: str,
    operation: str,
    entity_id: str | int,
    data: dict[str, Any],
    origin: str = ActorType.STAFF,
) -> SyncEvent | None:
    """Record a CRM-side change the app must learn and deliver it after commit.

    `origin` is who made the change; changes that came from the app are never echoed back (None).
    Without APP_WEBHOOK_URL the event is recorded as `skipped` (nothing is lost: staff can retry it
    once a URL is configured).
    """
    if origin == ActorType.APP:
        return None
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
    event = SyncEvent.objects.create(
        direction=SyncDirection.OUTBOUND,
        user_id=user_id,
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
    if pending:
        # A lost message stays `pending`; the beat job `sync_outbound_requeue_stuck_task` resends it.
        task_enqueue_on_commit(DELIVER_TASK, args=[event.pk])
    return event
