"""Idempotency: replays, body mismatch, derived keys, rejected events."""

import pytest

from activities.models import UserActivity
from compliance.models import AuditLog
from sync.models import SyncEvent, SyncStatus
from tests.sync.support import event

pytestmark = pytest.mark.django_db

FOOD = {
    "food_name": "Grilled Chicken",
    "calories": 450,
    "protein": 45,
    "carbs": 50,
    "fat": 12,
    "date": "2025-12-28",
}


def test_a_replay_answers_the_same_document_as_the_first_answer(post_event):
    # The first answer is the JSON text stored for replays, written as DRF renders a replay (key order
    # aside: the stored jsonb document orders keys its own way).
    body = event(user_id="user_123", external_id="food_\u2028_1", payload={**FOOD, "food_name": "Crème brûlée"})
    first = post_event(body, key="k_bytes")
    again = post_event(body, key="k_bytes")

    assert first["Content-Type"] == again["Content-Type"] == "application/json"
    assert again["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert b", " not in first.content  # compact, as DRF renders
    assert "Crème brûlée".encode() not in first.content  # the payload is not echoed; the id is
    assert first.json()["result"]["data"]["externalId"] == "food_\u2028_1"
    assert b"\\u2028" in first.content  # escaped as DRF's renderer does (valid JavaScript)


def test_seed_example_is_accepted_in_the_seed_shape(post_event):
    response = post_event(
        event(user_id="user_123", external_id="food_12345", payload=FOOD), key="food_12345_1703808000"
    )

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    assert body["idempotencyKey"] == "food_12345_1703808000"
    assert body["result"]["status"] == "success"
    data = body["result"]["data"]
    activity = UserActivity.objects.get()
    assert data["activityId"] == activity.pk
    assert data["activityType"] == "food_log"
    assert data["externalId"] == "food_12345"
    assert data["loggedDate"] == "2025-12-28"
    assert data["created"] is True
    assert data["conflicts"] == []
    assert "Idempotent-Replayed" not in response


def test_replay_returns_the_first_response_and_changes_nothing(post_event):
    first = post_event(event(payload=FOOD), key="test_123")
    audit_rows = AuditLog.objects.count()

    second = post_event(event(payload=FOOD), key="test_123")

    assert first.status_code == second.status_code == 202
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert first.json()["idempotencyKey"] == second.json()["idempotencyKey"] == "test_123"
    assert UserActivity.objects.count() == 1
    assert SyncEvent.objects.count() == 1
    assert AuditLog.objects.count() == audit_rows


def test_same_key_with_a_different_body_is_422(post_event):
    post_event(event(payload=FOOD), key="test_123")

    response = post_event(event(payload={**FOOD, "calories": 900}), key="test_123")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert UserActivity.objects.get().calories_kcal == 450
    assert SyncEvent.objects.filter(status=SyncStatus.SUCCESS).count() == 1


def test_key_defaults_to_the_seed_formula(post_event):
    body = event(external_id="food_9", payload=FOOD, occurredAt="2025-12-28T12:00:00+00:00")

    first = post_event(body)
    second = post_event(body)

    assert first.json()["idempotencyKey"] == "food_log:food_9:create:2025-12-28T12:00:00+00:00"
    assert second.status_code == 202
    assert second["Idempotent-Replayed"] == "true"
    assert UserActivity.objects.count() == 1


def test_without_occurred_at_the_webhook_id_is_the_key(post_event):
    body = event(payload=FOOD)

    first = post_event(body, msg_id="msg_retry_1")
    retried = post_event(body, msg_id="msg_retry_1")

    assert first.json()["idempotencyKey"] == "webhook:msg_retry_1"
    assert retried["Idempotent-Replayed"] == "true"
    assert SyncEvent.objects.count() == 1


def test_rejected_event_is_recorded_as_failed_and_does_not_reserve_the_key(post_event):
    bad = post_event(event(payload={"food_name": "Soup", "calories": -5}), key="k_fix_me")

    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"
    assert "calories" in bad.json()["error"]["details"]["payload"]
    failed = SyncEvent.objects.get()
    assert failed.status == SyncStatus.FAILED
    assert failed.response_status == 422
    assert UserActivity.objects.count() == 0

    fixed = post_event(event(payload={"food_name": "Soup", "calories": 120}), key="k_fix_me")

    assert fixed.status_code == 202
    assert fixed.json()["idempotencyKey"] == "k_fix_me"
    assert fixed.json()["result"]["status"] == "success"
    assert UserActivity.objects.count() == 1
    assert SyncEvent.objects.filter(status=SyncStatus.SUCCESS).count() == 1


def test_stored_payload_is_pii_redacted(post_event):
    payload = {**FOOD, "food_name": "Lunch with jane.doe@example.com"}
    post_event(event(payload=payload), key="pii_1")

    stored = SyncEvent.objects.get()
    activity = UserActivity.objects.get()
    assert "jane.doe@example.com" not in str(stored.payload)
    assert "jane.doe@example.com" not in str(stored.response_body)
    assert "[email:" in activity.payload["food_name"]
