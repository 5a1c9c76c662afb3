"""Standard Webhooks authentication, body limits, malformed input and the per-user rate limit."""

import datetime as dt
import json
import uuid

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from activities.models import UserActivity
from sync.models import SyncEvent
from tests.support import database_url, rate_window_seconds_left
from tests.sync.support import URL, event, signed_headers

pytestmark = pytest.mark.django_db

FOOD = {"food_name": "Grilled Chicken", "calories": 450, "protein": 45, "carbs": 50, "fat": 12}


def _nothing_stored():
    return SyncEvent.objects.count() == 0 and UserActivity.objects.count() == 0


def test_valid_signature_is_accepted(post_event):
    response = post_event(event(payload=FOOD), key="food_12345_1703808000")

    assert response.status_code == 202
    assert response.json()["status"] == "accepted"


def test_missing_signature_headers_is_401_and_stores_nothing(post_event):
    response = post_event(event(payload=FOOD), sign=False)

    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == "webhook_signature_invalid"
    assert "Missing required headers" in body["error"]["message"]
    assert _nothing_stored()


def test_wrong_secret_is_401(post_event):
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    response = post_event(event(payload=FOOD), secret=other)

    assert response.status_code == 401
    assert "No matching signature" in response.json()["error"]["message"]
    assert _nothing_stored()


def test_tampered_body_is_401(client):
    signed = json.dumps(event(payload=FOOD))
    tampered = signed.replace("450", "4500")
    response = client.post(URL, data=tampered, content_type="application/json", headers=signed_headers(signed))

    assert response.status_code == 401
    assert _nothing_stored()


def test_expired_signature_is_401(post_event):
    response = post_event(event(payload=FOOD), at=timezone.now() - dt.timedelta(minutes=6))

    assert response.status_code == 401
    assert "too old" in response.json()["error"]["message"]
    assert _nothing_stored()


def test_signature_from_the_future_is_401(post_event):
    response = post_event(event(payload=FOOD), at=timezone.now() + dt.timedelta(minutes=6))

    assert response.status_code == 401
    assert "too new" in response.json()["error"]["message"]


def test_no_secret_configured_refuses_everything(post_event, settings):
    settings.CRM_WEBHOOK_SECRET = ""
    response = post_event(event(payload=FOOD))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "webhook_secret_not_configured"
    assert _nothing_stored()


def test_body_over_256kb_is_413(post_event):
    big = event(payload={**FOOD, "notes": "x" * (256 * 1024)})
    response = post_event(big)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert _nothing_stored()


def test_malformed_json_is_400(post_event):
    response = post_event(raw='{"entityType": "food_log",')

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert _nothing_stored()


def test_json_that_is_not_an_object_is_400(post_event):
    response = post_event(raw="[1, 2, 3]")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_get_is_405(client):
    response = client.get(URL)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_rate_limit_is_100_per_minute_per_user(post_event, rate_limit_clock):
    # given: user ids of this test only, so no earlier counter is in the window
    busy, calm = f"user_busy_{uuid.uuid4().hex[:8]}", f"user_calm_{uuid.uuid4().hex[:8]}"
    for n in range(100):
        response = post_event(event(user_id=busy, external_id=f"f{n}", payload=FOOD))
        assert response.status_code == 202, response.json()

    # when: one more for the busy user and one for another user in the same window
    limited = post_event(event(user_id=busy, external_id="f100", payload=FOOD))
    other_user = post_event(event(user_id=calm, external_id="f100", payload=FOOD))

    # then
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited["Retry-After"]) == rate_window_seconds_left(busy, now=rate_limit_clock)
    assert other_user.status_code == 202
    assert other_user.json()["result"]["status"] == "success"
    assert UserActivity.objects.filter(user_id=busy).count() == 100
    assert UserActivity.objects.filter(user_id=calm).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_dropped_database_connection_is_a_503_to_retry_not_a_500(post_event):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    body = event(external_id="food_after_drop", payload={"food_name": "Tea", "calories": 2})

    response = post_event(body, key="k_drop")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "service_unavailable"
    # A server closes the unusable connection when the request ends (the test client does not).
    connection.close()
    assert post_event(body, key="k_drop").status_code == 202
    assert UserActivity.objects.filter(external_id="food_after_drop").count() == 1
