"""Start the stack the way `make run` does (honcho + Procfile: gunicorn, Celery worker, beat) and use it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings

from activities.models import UserActivity
from tests.servers import http_get
from tests.support import database_url, free_port, require_redis
from tests.sync.support import URL as WEBHOOK_PATH
from tests.sync.support import WEBHOOK_SECRET, signed_headers

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


ADMIN_KEY = "e2e-admin-key"


def _start_stack(tmp_path: Path, extra_env: dict) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    log_path = tmp_path / "stack.log"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "DATABASE_URL": database_url(),
        "CRM_VAR_DIR": str(tmp_path / "var"),
        "WEB_CONCURRENCY": "1",
        "CELERY_CONCURRENCY": "1",
        "CRM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CRM_ADMIN_KEY": ADMIN_KEY,
        **extra_env,
    }
    if "REDIS_URL" not in extra_env:
        env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [str(Path(bin_dir) / "honcho"), "start", "-f", "Procfile", "-p", str(port)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, port, log_path


def _stop_stack(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_healthy(port: int, process: subprocess.Popen, log_path: Path, timeout_s: float = 90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"stack exited early:\n{log_path.read_text()[-4000:]}"
        try:
            status, body = http_get(f"http://127.0.0.1:{port}/healthz")
            if status == 200:
                return json.loads(body)
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"/healthz never answered 200:\n{log_path.read_text()[-4000:]}")


def _exercise_stack(tmp_path: Path, extra_env: dict, client_app: Celery) -> None:
    process, port, log_path = _start_stack(tmp_path, extra_env)
    try:
        body = _wait_healthy(port, process, log_path)
        assert body["status"] == "ok"
        assert body["checks"]["pgvector"]["ok"] is True
        # a task goes through the real broker and worker, which reaches the database
        result = client_app.send_task("yahealthy_crm.ping")
        assert result.get(timeout=90) == {"pong": True, "pgvector": body["checks"]["pgvector"]["version"]}
        # the API docs and admin answer through gunicorn
        assert http_get(f"http://127.0.0.1:{port}/api/docs")[0] == 200
        assert http_get(f"http://127.0.0.1:{port}/admin/login/")[0] == 200
        deadline = time.monotonic() + 30
        while "beat: Starting" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        output = log_path.read_text()
        assert "beat: Starting" in output, output[-4000:]
        assert "celery@" in output or "worker@" in output
        _webhook_activity_gets_embedded_by_the_worker(port, log_path)
        _weekly_churn_job_runs_in_the_worker(port, log_path)
    finally:
        _stop_stack(process)


def _webhook_activity_gets_embedded_by_the_worker(port: int, log_path: Path) -> None:
    # A signed app event through gunicorn; its activity's embedding comes from the sweep task that
    # the event schedules after commit, run by the real worker from the real broker.
    body = json.dumps(
        {
            "entityType": "food_log",
            "operation": "create",
            "userId": "e2e_user",
            "externalId": "e2e_food_1",
            "payload": {"food_name": "Lentil soup", "calories": 320},
        }
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", **signed_headers(body)},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        assert json.loads(response.read())["result"]["status"] == "success"
    activity = UserActivity.objects.get(user_id="e2e_user", external_id="e2e_food_1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        activity.refresh_from_db()
        if activity.embedding is not None:
            return
        time.sleep(0.5)
    pytest.fail(f"the worker never embedded the webhook's activity:\n{log_path.read_text()[-4000:]}")


def _weekly_churn_job_runs_in_the_worker(port: int, log_path: Path) -> None:
    # The operator's trigger (seed "Background Jobs"): recorded as a JobRun, executed by the worker.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/crm/jobs/assess-churn", method="POST", headers={"X-Admin-Key": ADMIN_KEY}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        run_id = json.loads(response.read())["runId"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status, body = _admin_get(f"http://127.0.0.1:{port}/api/crm/jobs/{run_id}")
        assert status == 200, body
        run = json.loads(body)
        if run["status"] != "running":
            assert run["status"] == "succeeded", run
            assert run["details"]["assessed"] >= 1  # e2e_user, scored (fallback rule: no history yet)
            return
        time.sleep(0.5)
    pytest.fail(f"the weekly churn job never finished:\n{log_path.read_text()[-4000:]}")


def _admin_get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-Admin-Key": ADMIN_KEY})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_stack_runs_with_the_local_filesystem_queue(tmp_path):
    queue = tmp_path / "var" / "queue"
    for folder in ("messages", "control", "processed", "results"):
        (queue / folder).mkdir(parents=True, exist_ok=True)
    client_app = Celery(
        "e2e-client",
        broker="filesystem://localhost/",
        backend=f"file://{queue / 'results'}",
        broker_transport_options={
            "data_folder_in": str(queue / "messages"),
            "data_folder_out": str(queue / "messages"),
            "control_folder": str(queue / "control"),
            "processed_folder": str(queue / "processed"),
        },
    )
    _exercise_stack(tmp_path, {}, client_app)


def test_stack_runs_with_redis(tmp_path):
    require_redis()
    redis_url = "redis://127.0.0.1:6379/14"
    # Database 14 is this test's: nothing (e.g. an embedding-sweep flag) survives from an earlier run.
    redis.Redis.from_url(redis_url).flushdb()
    client_app = Celery("e2e-client", broker=redis_url, backend=redis_url)
    _exercise_stack(tmp_path, {"REDIS_URL": redis_url}, client_app)
