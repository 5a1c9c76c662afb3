"""Outbound CRM -> app deliveries to a real local HTTP receiver: signing, retries, dead letters."""

import json
import time

import pytest
from django.core.management import call_command
from django.db import transaction
from standardwebhooks import Webhook
from werkzeug import Response

from compliance.models import AuditLog
from goals.services import goal_outbox_record
from sync.delivery import RETRY_DELAYS_S, outbound_event_deliver
from sync.models import SyncDirection, SyncEvent, SyncStatus
from sync.outbox import outbox_record
from sync.tasks import sync_event_deliver_task
from tests.factories import GoalFactory, ProfileFactory
from tests.sync.support import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

APP_SECRET = "whsec_" + "YXBwLXNpZGUtc2VjcmV0LTAxMjM0NTY3ODk="


class Receiver:
    """An app endpoint that fails `failures` times, verifies signatures and dedups by webhook-id."""

    def __init__(self, failures: int = 0, secret: str = APP_SECRET):
        self.failures = failures
        self.webhook = Webhook(secret)
        self.requests: list[dict] = []
        self.applied: dict[str, dict] = {}

    def __call__(self, request):
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = self.webhook.verify(request.get_data(as_text=True), headers)  # raises on a bad signature
        self.requests.append({"id": headers["webhook-id"], "body": body})
        if len(self.requests) <= self.failures:
            return Response("busy", status=503)
        self.applied.setdefault(headers["webhook-id"], body)
        return Response("{}", status=200, content_type="application/json")


@pytest.fixture
def receiver(httpserver, settings):
    def _make(failures: int = 0) -> Receiver:
        handler = Receiver(failures)
        httpserver.expect_request("/app/webhooks/crm", method="POST").respond_with_handler(handler)
        settings.APP_WEBHOOK_URL = httpserver.url_for("/app/webhooks/crm")
        settings.APP_WEBHOOK_SECRET = APP_SECRET
        return handler

    return _make


def _enqueue(**kwargs) -> SyncEvent:
    defaults = {
        "user_id": "user_out",
        "entity_type": "goal",
        "operation": "create",
        "entity_id": 7,
        "data": {"goal": {"goalType": "nutrition", "goalValue": 120}},
    }
    return outbox_record(**{**defaults, **kwargs})


def test_without_app_webhook_url_events_are_recorded_as_skipped(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        event = _enqueue()

    assert event.status == SyncStatus.SKIPPED
    assert event.direction == SyncDirection.OUTBOUND
    assert callbacks == []
    assert SyncEvent.objects.filter(status=SyncStatus.SKIPPED).count() == 1


def test_app_originated_changes_are_never_echoed(receiver):
    receiver()

    assert _enqueue(origin="app") is None
    assert SyncEvent.objects.count() == 0


def test_delivery_is_signed_and_recorded(receiver, django_capture_on_commit_callbacks, celery_eager):
    app = receiver()

    with django_capture_on_commit_callbacks(execute=True):
        event = _enqueue()

    event.refresh_from_db()
    assert event.status == SyncStatus.DELIVERED
    assert event.attempts == 1
    assert event.response_status == 200
    assert len(app.requests) == 1
    delivered = app.requests[0]
    assert delivered["id"] == event.webhook_id
    assert delivered["body"]["type"] == "goal.create"
    assert delivered["body"]["data"]["userId"] == "user_out"
    assert delivered["body"]["data"]["goal"]["goalValue"] == 120


def test_falls_back_to_the_inbound_secret(httpserver, settings):
    handler = Receiver(secret=WEBHOOK_SECRET)
    httpserver.expect_request("/hook", method="POST").respond_with_handler(handler)
    settings.APP_WEBHOOK_URL = httpserver.url_for("/hook")
    event = _enqueue()

    assert outbound_event_deliver(event_id=event.pk).status == SyncStatus.DELIVERED
    assert len(handler.requests) == 1


def test_receiver_failing_twice_then_succeeding_gets_it_on_the_third_attempt(receiver, celery_eager_with_retries):
    app = receiver(failures=2)
    event = _enqueue()

    started = time.monotonic()
    result = sync_event_deliver_task.apply(args=[event.pk])
    elapsed = time.monotonic() - started

    event.refresh_from_db()
    assert result.get() == SyncStatus.DELIVERED
    assert event.status == SyncStatus.DELIVERED
    assert event.attempts == 3
    assert [r["id"] for r in app.requests] == [event.webhook_id] * 3
    assert len(app.applied) == 1
    assert elapsed < 5  # eager retries do not sleep


def test_backoff_schedule_is_1_2_4_8_16_then_dead_letter(receiver):
    app = receiver(failures=100)
    event = _enqueue()

    outcomes = [outbound_event_deliver(event_id=event.pk) for _ in range(6)]

    assert [o.retry_in_s for o in outcomes] == [1, 2, 4, 8, 16, None]
    assert list(RETRY_DELAYS_S) == [1, 2, 4, 8, 16]
    assert [o.status for o in outcomes] == [SyncStatus.RETRYING] * 5 + [SyncStatus.DEAD_LETTER]
    assert all(o.http_status == 503 for o in outcomes)
    event.refresh_from_db()
    assert event.status == SyncStatus.DEAD_LETTER
    assert event.attempts == 6  # the first attempt and five retries
    assert "HTTP 503" in event.error
    assert len(app.requests) == 6
    # A dead letter is not delivered again by a late duplicate task.
    assert outbound_event_deliver(event_id=event.pk).status == SyncStatus.DEAD_LETTER
    assert len(app.requests) == 6


def test_task_retries_with_the_backoff_countdowns(receiver, monkeypatch):
    receiver(failures=100)
    event = _enqueue()
    countdowns = []

    class _Retry(Exception):
        pass

    def fake_retry(*, countdown):
        countdowns.append(countdown)
        return _Retry()

    monkeypatch.setattr(sync_event_deliver_task, "retry", fake_retry)
    for _ in range(5):
        with pytest.raises(_Retry):
            sync_event_deliver_task.run(event.pk)
    assert sync_event_deliver_task.run(event.pk) == SyncStatus.DEAD_LETTER
    assert countdowns == [1, 2, 4, 8, 16]


def test_always_failing_receiver_ends_in_dead_letter_through_celery(receiver, celery_eager_with_retries):
    app = receiver(failures=100)
    event = _enqueue()

    assert sync_event_deliver_task.apply(args=[event.pk]).get() == SyncStatus.DEAD_LETTER

    event.refresh_from_db()
    assert event.status == SyncStatus.DEAD_LETTER
    assert len(app.requests) == 6


def test_unreachable_receiver_is_retried(settings):
    settings.APP_WEBHOOK_URL = "http://127.0.0.1:9/nothing-listens-here"
    settings.APP_WEBHOOK_SECRET = APP_SECRET
    event = _enqueue()

    outcome = outbound_event_deliver(event_id=event.pk)

    assert outcome.status == SyncStatus.RETRYING
    assert outcome.retry_in_s == 1
    event.refresh_from_db()
    assert "URLError" in event.error or "ConnectionRefusedError" in event.error


def test_timeout_is_a_failed_attempt(httpserver, settings):
    def slow(request):
        time.sleep(1.5)
        return Response("late", status=200)

    httpserver.expect_request("/slow", method="POST").respond_with_handler(slow)
    settings.APP_WEBHOOK_URL = httpserver.url_for("/slow")
    settings.APP_WEBHOOK_SECRET = APP_SECRET
    settings.APP_WEBHOOK_TIMEOUT_S = 0.5
    event = _enqueue()

    outcome = outbound_event_deliver(event_id=event.pk)

    assert outcome.status == SyncStatus.RETRYING
    event.refresh_from_db()
    assert "timed out" in event.error


def test_worker_crash_after_the_post_redelivers_with_the_same_webhook_id(receiver):
    """The attempt's transaction dies with the worker; the late-acked task runs again."""
    app = receiver()
    event = _enqueue()

    class WorkerCrashed(Exception):
        pass

    def attempt_then_die():
        with transaction.atomic():
            outbound_event_deliver(event_id=event.pk)
            raise WorkerCrashed  # the process dies before the attempt is committed

    with pytest.raises(WorkerCrashed):
        attempt_then_die()

    event.refresh_from_db()
    assert event.status == SyncStatus.PENDING  # nothing lost
    assert outbound_event_deliver(event_id=event.pk).status == SyncStatus.DELIVERED
    assert [r["id"] for r in app.requests] == [event.webhook_id, event.webhook_id]
    assert len(app.applied) == 1  # the receiver honours webhook-id: delivered once
    assert sync_event_deliver_task.acks_late is True
    assert sync_event_deliver_task.reject_on_worker_lost is True


def test_retry_syncs_command_redelivers_dead_letters(receiver, django_capture_on_commit_callbacks, celery_eager):
    app = receiver(failures=6)
    event = _enqueue()
    for _ in range(6):
        outbound_event_deliver(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == SyncStatus.DEAD_LETTER

    with django_capture_on_commit_callbacks(execute=True):
        call_command("retry_syncs")

    event.refresh_from_db()
    assert event.status == SyncStatus.DELIVERED
    assert event.attempts == 1
    assert len(app.requests) == 7
    assert AuditLog.objects.filter(action="sync.outbound_retried", actor_type="staff").count() == 1


def test_admin_action_retries_dead_letters(receiver, admin_client, django_capture_on_commit_callbacks, celery_eager):
    app = receiver(failures=6)
    dead = _enqueue()
    for _ in range(6):
        outbound_event_deliver(event_id=dead.pk)
    inbound = SyncEvent.objects.create(
        direction="inbound", entity_type="food_log", operation="create", idempotency_key="k", status="success"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/sync/syncevent/",
            {"action": "retry_deliveries", "_selected_action": [dead.pk, inbound.pk]},
        )

    assert response.status_code == 302
    dead.refresh_from_db()
    inbound.refresh_from_db()
    assert dead.status == SyncStatus.DELIVERED
    assert inbound.status == SyncStatus.SUCCESS
    assert len(app.requests) == 7


def test_goal_change_by_staff_is_delivered_and_app_goal_is_not(receiver):
    receiver()
    profile = ProfileFactory(user_id="user_out")
    staff_goal = GoalFactory(user=profile, source="staff")
    app_goal = GoalFactory(user=profile, source="app", external_id="g_app")

    staff_event = goal_outbox_record(goal=staff_goal, operation="create", origin="staff")
    echoed = goal_outbox_record(goal=app_goal, operation="update", origin="app")

    assert echoed is None
    assert staff_event.payload["data"]["goal"]["id"] == staff_goal.pk
    assert json.dumps(staff_event.payload)  # stored as JSON
    assert SyncEvent.objects.filter(direction="outbound").count() == 1


def test_inbound_webhooks_are_not_echoed_outbound(post_event, receiver):
    from tests.sync.support import event as inbound_event

    receiver()
    response = post_event(
        inbound_event(
            "goal",
            "create",
            external_id="g1",
            payload={"goal_type": "water", "goal_value": 2000, "goal_unit": "ml"},
        )
    )

    assert response.status_code == 202
    assert response.json()["result"]["status"] == "success"
    assert SyncEvent.objects.filter(direction="outbound").count() == 0
