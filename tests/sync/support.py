"""Helpers for the webhook tests: the shared secret, signed headers and event bodies."""

import base64
import uuid

from django.utils import timezone
from standardwebhooks import Webhook

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"yahealthy-test-secret-0123456789").decode()
URL = "/api/crm/webhooks/app-event"


def signed_headers(body: str, *, secret: str = WEBHOOK_SECRET, msg_id: str | None = None, at=None) -> dict:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or timezone.now()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def event(entity_type="food_log", operation="create", user_id="user_sync", external_id="food_1", **kwargs):
    body = {
        "entityType": entity_type,
        "operation": operation,
        "userId": user_id,
        "externalId": external_id,
        "payload": kwargs.pop("payload", {}),
    }
    body.update(kwargs)
    return body


def inbound_event_store(idempotency_key: str, **fields):
    """An inbound sync event row as the engine stores one (a food-log create unless `fields` say)."""
    from sync.models import SyncEvent

    defaults = {"direction": "inbound", "entity_type": "food_log", "operation": "create", "status": "success"}
    return SyncEvent.objects.create(idempotency_key=idempotency_key, **{**defaults, **fields})
