"""Rotating a webhook secret without a failed request: two secrets at once, in both directions."""

import base64
import json

import pytest

from goals.models import GoalType
from goals.services import goal_create
from sync.delivery import outbound_event_deliver
from sync.models import SyncDirection, SyncEvent
from tests.factories import ProfileFactory
from tests.sync.support import URL, signed_headers
from tests.sync.test_outbound import Receiver
from yahealthy_crm.actors import ActorType

pytestmark = pytest.mark.django_db

OLD = "whsec_" + base64.b64encode(b"the-old-secret-of-the-crm-0123456").decode()
NEW = "whsec_" + base64.b64encode(b"the-new-secret-of-the-crm-6543210").decode()
OTHER = "whsec_" + base64.b64encode(b"a-secret-nobody-configured-000000").decode()


def _event(external_id: str) -> str:
    body = {
        "entityType": "food_log",
        "operation": "create",
        "userId": "rotating_user",
        "externalId": external_id,
        "payload": {"food_name": "Rice", "calories": 200},
    }
    return json.dumps(body)


@pytest.mark.parametrize(("signed_with", "expected"), [(OLD, 202), (NEW, 202), (OTHER, 401)])
def test_during_a_rotation_either_secret_is_accepted(client, settings, signed_with, expected):
    settings.CRM_WEBHOOK_SECRET = f"{NEW} {OLD}"
    body = _event(f"rot_{expected}_{signed_with[-6:]}")

    response = client.post(
        URL, data=body, content_type="application/json", headers=signed_headers(body, secret=signed_with)
    )

    assert response.status_code == expected, response.content
    if expected == 401:
        assert response.json()["error"]["code"] == "webhook_signature_invalid"


def test_after_the_rotation_the_old_secret_is_refused(client, settings):
    settings.CRM_WEBHOOK_SECRET = NEW
    body = _event("rot_after")
    response = client.post(URL, data=body, content_type="application/json", headers=signed_headers(body, secret=OLD))
    assert response.status_code == 401


@pytest.mark.parametrize("app_knows", [OLD, NEW])
def test_outbound_deliveries_carry_a_signature_per_secret(httpserver, settings, app_knows):
    # The app still has the old secret, or already the new one: either way the delivery verifies.
    settings.APP_WEBHOOK_SECRET = f"{NEW} {OLD}"
    receiver = Receiver(secret=app_knows)
    httpserver.expect_request("/app/webhooks/crm", method="POST").respond_with_handler(receiver)
    settings.APP_WEBHOOK_URL = httpserver.url_for("/app/webhooks/crm")
    ProfileFactory(user_id="rotating_user")
    goal_create(
        user_id="rotating_user",
        goal_type=GoalType.WATER,
        goal_value=2000,
        goal_unit="ml",
        actor_type=ActorType.STAFF,
        actor_id="staff_rotation",
    )
    event = SyncEvent.objects.get(direction=SyncDirection.OUTBOUND)

    outcome = outbound_event_deliver(event_id=event.pk)

    assert outcome.status == "delivered", event.error
    assert len(receiver.requests) == 1
    [request] = httpserver.log[-1:]
    assert len(request[0].headers["webhook-signature"].split()) == 2
