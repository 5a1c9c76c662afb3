import base64
import datetime as dt
import json
import uuid

import pytest
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


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.CRM_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.APP_WEBHOOK_URL = ""
    settings.APP_WEBHOOK_SECRET = ""


@pytest.fixture(autouse=True)
def _no_embedding_sweep_scheduled(db):
    # With a Redis cache the "sweep scheduled" flag would outlive the test that set it.
    from django.core.cache import cache

    from activities.services import EMBED_SWEEP_FLAG

    cache.delete(EMBED_SWEEP_FLAG)


@pytest.fixture
def post_event(client):
    """POST a signed event; `key` sets Idempotency-Key, `raw` sends a body string as is."""

    def _post(body=None, *, key=None, raw=None, headers=None, sign=True, **sign_kwargs):
        text = raw if raw is not None else json.dumps(body)
        all_headers = signed_headers(text, **sign_kwargs) if sign else {}
        if key is not None:
            all_headers["Idempotency-Key"] = key
        all_headers.update(headers or {})
        return client.post(URL, data=text, content_type="application/json", headers=all_headers)

    return _post


@pytest.fixture
def celery_eager():
    """Run Celery tasks in process for this test (the real broker is exercised in tests/e2e)."""
    from yahealthy_crm.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = False  # an eager retry must re-run the task, not raise Retry
    yield app
    app.conf.task_always_eager = False
