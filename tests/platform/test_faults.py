"""Faults the CRM survives, each through real processes: the database or Redis going away and coming
back, the OpenAI-compatible server down, a worker killed mid-delivery, the web server killed mid-burst.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.utils import timezone

from activities.models import UserActivity
from sync.models import SyncEvent
from tests.factories import ProfileFactory
from tests.servers import (
    TcpProxy,
    database_proxy,
    database_url_through,
    gunicorn_running,
    gunicorn_start,
    http_request,
    server_stop,
)
from tests.support import JWT_SECRET, database_url, free_port, make_jwt, require_redis
from tests.sync.support import URL as WEBHOOK_PATH
from tests.sync.support import WEBHOOK_SECRET, signed_headers
from yahealthy_crm.models import ServiceApiKey

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _call(url: str, *, method: str = "GET", body: dict | None = None, headers: dict | None = None, timeout=15):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(headers or {})}
    status, answer = http_request(url, method=method, data=data, headers=headers, timeout=timeout)
    return status, json.loads(answer or b"null")


def _food_event(user_id: str, external_id: str) -> dict:
    return {
        "entityType": "food_log",
        "operation": "create",
        "userId": user_id,
        "externalId": external_id,
        "payload": {"food_name": "Lentil soup", "calories": 320, "protein_g": 18},
    }


def _post_webhook(base_url: str, event: dict, *, key: str, timeout: float = 15) -> int:
    body = json.dumps(event)
    headers = {"Content-Type": "application/json", "Idempotency-Key": key, **signed_headers(body)}
    return http_request(base_url + WEBHOOK_PATH, method="POST", data=body.encode(), headers=headers, timeout=timeout)[0]


def _wait_for(condition, *, timeout_s: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")


# --- database ------------------------------------------------------------------------------------


def test_database_unreachable_answers_503_json_and_recovers_without_restart(tmp_path):
    ProfileFactory(user_id="db_fault_user")
    _, api_key = ServiceApiKey.objects.create_key(name="db-fault")
    auth = {"Authorization": f"Api-Key {api_key}"}
    proxy = database_proxy()
    try:
        with gunicorn_running(tmp_path, {"DATABASE_URL": database_url_through(proxy)}) as server:
            profile_url = f"{server.url}/api/crm/users/db_fault_user"
            assert _call(profile_url, headers=auth)[0] == 200
            pid = server.process.pid

            proxy.cut()
            status, body = _call(f"{server.url}/healthz")
            assert status == 503
            assert body["checks"]["database"]["ok"] is False
            for _ in range(3):  # the broken persistent connection, then new connections refused
                status, body = _call(profile_url, headers=auth)
                assert status == 503, body
                assert body["error"]["code"] == "service_unavailable"

            proxy.restore()
            _wait_for(lambda: _call(profile_url, headers=auth)[0] == 200, timeout_s=15, what="the API to recover")
            assert _call(f"{server.url}/healthz")[0] == 200
            assert server.process.pid == pid
            assert server.process.poll() is None
    finally:
        proxy.close()


# --- Redis (broker and cache) ----------------------------------------------------------------------


class _Receiver:
    """The app's webhook receiver: records each delivery; can hold the first one forever (a hang)."""

    def __init__(self, *, hang_first: bool = False):
        self.deliveries: list[dict] = []
        self.started = threading.Event()
        self.hang_first = hang_first
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                first = not receiver.started.is_set()
                receiver.started.set()
                if first and receiver.hang_first:
                    receiver._release.wait(120)
                    return
                receiver.deliveries.append({"id": self.headers.get("webhook-id"), "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/crm-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def _worker_start(tmp_path: Path, env: dict) -> subprocess.Popen:
    log = (tmp_path / "worker.log").open("a")
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "yahealthy_crm.worker",
            "worker",
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--loglevel",
            "info",
            "--hostname",
            f"faults{free_port()}@%h",
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _sweep_through_broker(broker_env: dict) -> None:
    """What beat does every 5 minutes: queue overdue outbound deliveries again (the test moves their
    clock instead of waiting)."""
    SyncEvent.objects.filter(direction="outbound", status__in=["pending", "retrying"]).update(
        next_attempt_at=timezone.now() - dt.timedelta(minutes=10)
    )
    client = Celery(broker=broker_env["REDIS_URL"]) if broker_env.get("REDIS_URL") else None
    if client is None:
        queue = Path(broker_env["CRM_VAR_DIR"]) / "queue"
        client = Celery(
            broker="filesystem://localhost/",
            broker_transport_options={
                "data_folder_in": str(queue / "messages"),
                "data_folder_out": str(queue / "messages"),
                "control_folder": str(queue / "control"),
            },
        )
    client.send_task("sync.tasks.sync_outbound_requeue_stuck_task")


def test_redis_down_webhooks_still_accepted_and_outbound_work_caught_up(tmp_path):
    require_redis()
    ProfileFactory(user_id="redis_fault_user")
    proxy = TcpProxy(("127.0.0.1", 6379))
    receiver = _Receiver()
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/7",
        "APP_WEBHOOK_URL": receiver.url,
        "CRM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CRM_JWT_SECRET": JWT_SECRET,
        "CRM_VAR_DIR": str(tmp_path / "var"),
    }
    worker = None
    try:
        with gunicorn_running(tmp_path, env) as server:
            proxy.cut()
            started = time.monotonic()
            status = _post_webhook(server.url, _food_event("redis_fault_user", "rf_1"), key="rf_1")
            assert status == 202, server.log()
            assert UserActivity.objects.filter(user_id="redis_fault_user", external_id="rf_1").count() == 1
            # an outbound change (a goal the user sets) is recorded although it cannot be queued
            user = {"Authorization": f"Bearer {make_jwt('redis_fault_user')}"}
            goal = {"goal_type": "nutrition", "goal_value": 120, "goal_unit": "g", "metric": "protein_g"}
            status, body = _call(
                f"{server.url}/api/crm/users/redis_fault_user/goals", method="POST", body=goal, headers=user
            )
            assert status == 201, body
            assert time.monotonic() - started < 20, "requests hung on the unreachable broker"
            outbound = SyncEvent.objects.filter(direction="outbound", user_id="redis_fault_user")
            assert outbound.count() == 1
            assert receiver.deliveries == []

            # Redis returns: a worker and the periodic sweep deliver what was recorded
            proxy.restore()
            worker = _worker_start(tmp_path, {**env, "DATABASE_URL": database_url()})
            _sweep_through_broker(env)
            _wait_for(lambda: receiver.deliveries, timeout_s=60, what="the outbound delivery")
            _wait_for(lambda: outbound.get().status == "delivered", timeout_s=20, what="status delivered")
            assert len(receiver.deliveries) == 1
    finally:
        if worker is not None:
            _stop(worker)
        receiver.close()
        proxy.close()


# --- a worker killed mid-delivery ---------------------------------------------------------------


def test_worker_killed_mid_delivery_delivers_once_after_restart(tmp_path):
    ProfileFactory(user_id="kill_worker_user")
    receiver = _Receiver(hang_first=True)  # the app's server hangs: the worker waits inside the POST
    env = {
        "APP_WEBHOOK_URL": receiver.url,
        "CRM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CRM_JWT_SECRET": JWT_SECRET,
        "CRM_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": database_url(),
        "REDIS_URL": None,  # the local filesystem queue, as `make run` uses without Redis
    }
    worker = _worker_start(tmp_path, {k: v for k, v in env.items() if v is not None})
    try:
        with gunicorn_running(tmp_path, env) as server:
            user = {"Authorization": f"Bearer {make_jwt('kill_worker_user')}"}
            goal = {"goal_type": "nutrition", "goal_value": 110, "goal_unit": "g", "metric": "protein_g"}
            status, body = _call(
                f"{server.url}/api/crm/users/kill_worker_user/goals", method="POST", body=goal, headers=user
            )
            assert status == 201, body
            assert receiver.started.wait(60), (tmp_path / "worker.log").read_text()[-3000:]

            _stop(worker, signal.SIGKILL)  # mid-delivery: the POST never got its answer
            outbound = SyncEvent.objects.get(direction="outbound", user_id="kill_worker_user")
            assert outbound.status != "delivered"

            worker = _worker_start(tmp_path, {k: v for k, v in env.items() if v is not None})
            _sweep_through_broker(env)
            _wait_for(lambda: receiver.deliveries, timeout_s=60, what="the delivery after the restart")
            _wait_for(
                lambda: SyncEvent.objects.get(pk=outbound.pk).status == "delivered",
                timeout_s=20,
                what="status delivered",
            )
            time.sleep(2)  # nothing else arrives
            assert len(receiver.deliveries) == 1
            delivered = receiver.deliveries[0]["body"]
            assert delivered["type"] == "goal.create"
            assert delivered["data"]["userId"] == "kill_worker_user"
    finally:
        _stop(worker)
        receiver.close()


# --- the web server killed during a burst of webhooks ----------------------------------------------


def test_web_server_killed_mid_burst_every_accepted_event_stored_once(tmp_path):
    users = [f"burst_user_{n}" for n in range(20)]  # 30 events each, twice: under 100 a minute
    for user_id in users:
        ProfileFactory(user_id=user_id)
    events = [(f"burst_{n}", _food_event(users[n % len(users)], f"burst_{n}")) for n in range(600)]
    env = {"WEB_CONCURRENCY": "2", "CRM_VAR_DIR": str(tmp_path / "var")}
    server = gunicorn_start(tmp_path, env)
    accepted: list[str] = []
    lock = threading.Lock()
    killer = threading.Thread(target=server_stop, args=(server,), kwargs={"sig": signal.SIGKILL})

    def send(item):
        key, event = item
        try:
            status = _post_webhook(server.url, event, key=key, timeout=10)
        except (OSError, http.client.HTTPException):  # the server died mid-answer
            return
        if status == 202:
            with lock:
                accepted.append(key)
                if len(accepted) == 150:  # mid-burst, however fast the machine is
                    killer.start()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(send, events))
    killer.join()
    assert server.process.poll() is not None

    stored_ids = list(UserActivity.objects.filter(user_id__in=users).values_list("external_id", flat=True))
    assert 0 < len(accepted) < len(events), "the kill should land mid-burst"
    assert len(stored_ids) == len(set(stored_ids)), "an event was stored twice"
    assert set(accepted) <= set(stored_ids), "an event answered 202 was lost"

    # the app backend retries everything it did not get a 202 for (and some it did): once each
    restarted = gunicorn_start(tmp_path, env)
    try:
        statuses = [_post_webhook(restarted.url, event, key=key) for key, event in events]
    finally:
        server_stop(restarted)
    assert set(statuses) == {202}
    stored_ids = list(UserActivity.objects.filter(user_id__in=users).values_list("external_id", flat=True))
    assert sorted(stored_ids) == sorted(key for key, _ in events)


# --- the OpenAI-compatible server down -------------------------------------------------------------


def test_openai_server_down_answers_offline_within_the_time_budget(settings, client_a, profile_a):
    settings.OPENAI_API_KEY = "sk-test-nobody-listens"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"  # connection refused
    settings.COACH_TIMEOUT_S = 5.0

    started = time.monotonic()
    response = client_a.post(
        f"/api/crm/users/{profile_a.user_id}/ask", {"message": "Help me set a protein goal."}, format="json"
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["provider"] == "offline"
    assert body["fallbackReason"]
    assert body["response"]
    assert elapsed < settings.COACH_TIMEOUT_S, f"took {elapsed:.1f} s"
