"""50 identical webhooks at once over real HTTP: applied exactly once."""

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread, _StaticFilesHandler

from activities.models import UserActivity
from compliance.models import AuditLog
from sync.models import SyncEvent
from tests.sync.support import URL, event, inbound_event_store, signed_headers

CONCURRENCY = 50


class _WideBacklogServer(ThreadedWSGIServer):
    # Django's default listen backlog (10) resets connections beyond it; 50 clients connect at once.
    request_queue_size = 128


class _WideBacklogServerThread(LiveServerThread):
    server_class = _WideBacklogServer


@pytest.fixture
def threaded_live_server(transactional_db):
    """A real threaded HTTP server on a free port, talking to the test database."""
    thread = _WideBacklogServerThread("localhost", _StaticFilesHandler, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://localhost:{thread.port}"
    thread.terminate()


def _post(url: str, body: str, headers: dict, barrier: threading.Barrier) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    barrier.wait()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_fifty_identical_webhooks_apply_exactly_once(threaded_live_server, celery_eager):
    # given one signed event, sent 50 times at the same instant from 50 threads
    body = json.dumps(
        event(
            user_id="user_concurrent",
            external_id="food_race",
            payload={"food_name": "Grilled Chicken", "calories": 450, "protein": 45},
        )
    )
    headers = {**signed_headers(body), "Idempotency-Key": "race_key_1"}
    barrier = threading.Barrier(CONCURRENCY)

    # when
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        futures = [pool.submit(_post, threaded_live_server + URL, body, headers, barrier) for _ in range(CONCURRENCY)]
        responses = [future.result() for future in futures]

    # then
    statuses = [status for status, _, _ in responses]
    assert statuses == [202] * CONCURRENCY, statuses
    results = {json.dumps(payload["result"], sort_keys=True) for _, _, payload in responses}
    assert len(results) == 1
    replayed = [h for _, h, _ in responses if h.get("Idempotent-Replayed") == "true"]
    assert len(replayed) == CONCURRENCY - 1
    assert UserActivity.objects.filter(user_id="user_concurrent").count() == 1
    assert SyncEvent.objects.filter(idempotency_key="race_key_1").count() == 1
    assert SyncEvent.objects.count() == 1
    assert AuditLog.objects.filter(action="food_log.create").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_twin_still_in_flight_past_the_wait_is_answered_409_and_nothing_is_stored(client, monkeypatch, celery_eager):
    from django.db import connections, transaction

    import sync.inbound.intake

    monkeypatch.setattr(sync.inbound.intake, "IN_FLIGHT_WAIT", "300ms")
    body = json.dumps(
        event(user_id="user_in_flight", external_id="food_slow", payload={"food_name": "Soup", "calories": 200})
    )
    holding, release = threading.Event(), threading.Event()

    def first_request_holding_the_key():
        # Stands for a first request that claimed the key and has not committed yet.
        with transaction.atomic():
            inbound_event_store("slow_key", status="processing")
            holding.set()
            release.wait(10)
            transaction.set_rollback(True)
        connections.close_all()

    twin = threading.Thread(target=first_request_holding_the_key)
    twin.start()
    try:
        assert holding.wait(10)
        response = client.post(
            URL,
            data=body,
            content_type="application/json",
            headers={**signed_headers(body), "Idempotency-Key": "slow_key"},
        )
    finally:
        release.set()
        twin.join()

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "idempotency_key_in_flight"
    assert "retry shortly" in response.json()["error"]["message"]
    assert not SyncEvent.objects.exists()
    assert not UserActivity.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_profile_locked_past_the_wait_after_the_claim_is_answered_409_and_nothing_is_stored(
    client, monkeypatch, celery_eager
):
    """E.g. a GDPR erase holding the user's row: the event's claim waits IN_FLIGHT_WAIT, then 409."""
    from django.db import connections, transaction

    import sync.inbound.intake
    from profiles.models import CrmUserProfile
    from tests.factories import ProfileFactory

    monkeypatch.setattr(sync.inbound.intake, "IN_FLIGHT_WAIT", "300ms")
    ProfileFactory(user_id="user_locked")
    body = json.dumps(
        event(user_id="user_locked", external_id="food_locked", payload={"food_name": "Soup", "calories": 200})
    )
    holding, release = threading.Event(), threading.Event()

    def erase_holding_the_profile_row():
        with transaction.atomic():
            CrmUserProfile.objects.select_for_update().get(user_id="user_locked")
            holding.set()
            release.wait(10)
        connections.close_all()

    eraser = threading.Thread(target=erase_holding_the_profile_row)
    eraser.start()
    try:
        assert holding.wait(10)
        response = client.post(
            URL, data=body, content_type="application/json", headers={**signed_headers(body), "Idempotency-Key": "k1"}
        )
    finally:
        release.set()
        eraser.join()

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "idempotency_key_in_flight"
    assert "GDPR erase" in response.json()["error"]["message"]
    assert not SyncEvent.objects.exists()
    assert not UserActivity.objects.exists()
    # the same event once the row is free again: applied
    retry = client.post(
        URL, data=body, content_type="application/json", headers={**signed_headers(body), "Idempotency-Key": "k1"}
    )
    assert retry.status_code == 202
    assert UserActivity.objects.filter(external_id="food_locked").count() == 1
