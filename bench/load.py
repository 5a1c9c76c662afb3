"""Load benchmark: a mixed workload against the stack `make run` starts, for a fixed time.

    .venv/bin/python bench/load.py [--seconds 30] [--users 1000]

Creates a throw-away database `<db>_load` on the configured PostgreSQL (DATABASE_URL, else the
embedded server under var/pgdata), migrates it, seeds --users demo users (`seed_demo`), creates a
service API key, then starts gunicorn (gunicorn.conf.py, as `make run`) and one Celery worker on a
local filesystem queue. For --seconds, at the same time:

- single: signed `POST /webhooks/app-event` food_log creates, each with its own key (wrk);
- batch:  signed `POST /webhooks/app-events` of --batch-size events each (wrk);
- reads:  `GET` profile, metrics, nutrition snapshot, goals, insights of random users (wrk);
- ask:    `POST /users/<id>/ask` to the coach (offline provider) (wrk);
- jobs:   the weekly churn assessment triggered with X-Admin-Key, polled until it finishes, and
          triggered again (a Python loop; a few requests, not a rate figure).

Each wrk replays requests generated (and signed) up front (bench/wrk_replay.lua) from one thread,
so the load generators take little CPU from the server. Reported per endpoint: requests/s, p50,
p99, statuses and errors (anything but 2xx counts, and must be 0); afterwards the rows in the
database: every accepted event stored exactly once, one coaching session per answered ask.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database_recreate, with_database  # noqa: E402
from bench.support import server_url as configured_server_url  # noqa: E402
from bench.wrk import (  # noqa: E402
    free_port,
    record_write,
    request_raw,
    server_wait_ready,
    signed_webhook_headers,
    wrk_run,
)

WEBHOOK_PATH = "/api/crm/webhooks/app-event"
BATCH_PATH = "/api/crm/webhooks/app-events"
READ_PATHS = ("", "/metrics", "/nutrition-snapshot", "/goals", "/insights")
QUESTIONS = ("Help me set a protein goal.", "How was my week?", "Am I eating enough fibre?", "Any tips for sleep?")


def _write(path: Path, requests: list[bytes]) -> None:
    with open(f"{path}.0", "wb") as out:  # wrk thread 0's slice (bench/wrk_replay.lua)
        for raw in requests:
            record_write(out, raw)


class Workload:
    def __init__(
        self, port: int, secret: str, api_key: str, users: list[str], coach_users: list[str], batch_size: int
    ) -> None:
        from standardwebhooks import Webhook

        self.port, self.api_key, self.users, self.batch_size = port, api_key, users, batch_size
        self.coach_users = coach_users
        self.webhook = Webhook(secret)
        self.run_id = secrets.token_hex(4)
        self.serial = 0
        self.random = random.Random(7)

    def _event(self) -> dict:
        self.serial += 1
        key = f"load-{self.run_id}-{self.serial}"
        return {
            "entityType": "food_log",
            "operation": "create",
            "userId": self.users[self.serial % len(self.users)],
            "externalId": key,
            "occurredAt": datetime.now(UTC).isoformat(),
            "payload": {"food_name": "Grilled chicken salad", "calories": 450, "protein_g": 42, "carbs_g": 20},
        }

    def _signed(self, path: str, body: str, key: str, now: datetime) -> bytes:
        headers = signed_webhook_headers(self.webhook, key=key, body=body, now=now)
        return request_raw(self.port, "POST", path, headers, body.encode())

    def singles(self, count: int) -> list[bytes]:
        now = datetime.now(UTC)
        requests = []
        for _ in range(count):
            event = self._event()
            requests.append(self._signed(WEBHOOK_PATH, json.dumps(event), event["externalId"], now))
        return requests

    def batches(self, count: int) -> list[bytes]:
        now = datetime.now(UTC)
        requests = []
        for _ in range(count):
            events = [
                {**event, "idempotencyKey": event["externalId"]}
                for event in (self._event() for _ in range(self.batch_size))
            ]
            requests.append(self._signed(BATCH_PATH, json.dumps({"events": events}), f"load-batch-{self.serial}", now))
        return requests

    def reads(self, count: int) -> list[bytes]:
        auth = {"Authorization": f"Api-Key {self.api_key}"}
        return [
            request_raw(
                self.port,
                "GET",
                f"/api/crm/users/{self.random.choice(self.users)}{self.random.choice(READ_PATHS)}",
                auth,
            )
            for _ in range(count)
        ]

    def asks(self, count: int) -> list[bytes]:
        auth = {"Authorization": f"Api-Key {self.api_key}"}
        requests = []
        for number in range(count):
            user = self.coach_users[number % len(self.coach_users)]  # round robin: the 10/min per-user limit holds
            body = json.dumps({"message": QUESTIONS[number % len(QUESTIONS)]}).encode()
            requests.append(request_raw(self.port, "POST", f"/api/crm/users/{user}/ask", auth, body))
        return requests


class JobLoop(threading.Thread):
    """Triggers the weekly churn assessment, waits for it to finish, triggers it again."""

    def __init__(self, base: str, admin_key: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.admin_key, self.stop_event = base, admin_key, stop
        self.runs: list[dict] = []
        self.errors: list[str] = []

    def _call(self, method: str, path: str) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, method=method, headers={"X-Admin-Key": self.admin_key})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except OSError as error:  # the server stopping at the end of the run
            return 0, {"error": str(error)}

    def run(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            status, body = self._call("POST", "/api/crm/jobs/assess-churn")
            if status not in (200, 202):
                if not self.stop_event.is_set():
                    self.errors.append(f"trigger answered {status}: {body}")
                return
            run_id = body["runId"]
            while True:
                status, run = self._call("GET", f"/api/crm/jobs/{run_id}")
                if status != 200:
                    if not self.stop_event.is_set():
                        self.errors.append(f"job status answered {status}: {run}")
                    return
                if run.get("status") not in ("queued", "running"):
                    break
                time.sleep(0.5)
            self.runs.append(
                {"status": run.get("status"), "seconds": time.monotonic() - started, "error": run.get("error", "")}
            )
            self.stop_event.wait(2)


def _manage(env: dict, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="measured seconds")
    parser.add_argument("--users", type=int, default=1000, help="demo users (seed_demo)")
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch request")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")
    connections = {"single": 8, "batch": 2, "reads": 4, "ask": 2}
    # Request files sized above what each endpoint can serve (no request is sent twice).
    expected_rate = {"single": 1500, "batch": 30, "reads": 2500, "ask": 300}

    server_url = configured_server_url()
    db_name = urllib.parse.urlsplit(server_url).path.lstrip("/") + "_load"
    load_url = with_database(server_url, db_name)
    work_dir = Path(tempfile.mkdtemp(prefix="crm-load-"))
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    admin_key = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "DATABASE_URL": load_url,
        "CRM_VAR_DIR": str(work_dir / "var"),
        "CRM_WEBHOOK_SECRET": secret,
        "CRM_ADMIN_KEY": admin_key,
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "CRM_ACCESS_LOG": "/dev/null",
        "GUNICORN_LOG_LEVEL": "warning",
    }
    env.pop("REDIS_URL", None)
    env.pop("OPENAI_API_KEY", None)
    database_recreate(server_url, db_name)
    processes: list[subprocess.Popen] = []
    try:
        print(f"preparing: migrate, seed {args.users} demo users ...", flush=True)
        _manage(env, "migrate", "--no-input", "-v", "0")
        _manage(env, "seed_demo", "--users", str(args.users))
        api_key = _manage(env, "create_api_key", "load-bench").strip().splitlines()[-1]
        profiles = _manage(
            env,
            "shell",
            "-v",
            "0",
            "-c",
            "from profiles.models import CrmUserProfile as P; "
            "print('\\n'.join(f'{u} {int(c)}' for u, c in P.objects.values_list('user_id', 'consent_ai_processing')))",
        ).splitlines()
        users = [line.split()[0] for line in profiles]
        # Only users who consented to AI processing ask the coach (the others get 403, as they should).
        coach_users = [line.split()[0] for line in profiles if line.endswith(" 1")]
        port = free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "yahealthy_crm.wsgi", "--bind", f"127.0.0.1:{port}"],
                cwd=ROOT,
                env=env,
            )
        )
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "yahealthy_crm.worker",
                    "worker",
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        server_wait_ready(port)
        workload = Workload(port, secret, api_key, users, coach_users, args.batch_size)
        counts = {
            name: math.ceil(rate * args.seconds * 1.5) + connections[name] for name, rate in expected_rate.items()
        }
        builders = {
            "single": workload.singles,
            "batch": workload.batches,
            "reads": workload.reads,
            "ask": workload.asks,
        }
        for name, build in builders.items():
            _write(work_dir / name, build(counts[name]))

        import psycopg

        monitor = psycopg.connect(load_url, autocommit=True)
        sessions_before = monitor.execute("SELECT count(*) FROM crm_coaching_sessions").fetchone()[0]
        stop = threading.Event()
        jobs = JobLoop(f"http://127.0.0.1:{port}", admin_key, stop)
        results: dict[str, dict] = {}

        def run(name: str) -> None:
            results[name] = wrk_run(
                port,
                work_dir / name,
                seconds=args.seconds,
                connections=connections[name],
                threads=1,
                log=work_dir / f"{name}.log",
            )

        print(f"running the mixed workload for {args.seconds:g} s ...", flush=True)
        runners = [threading.Thread(target=run, args=(name,)) for name in builders]
        jobs.start()
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
        stop.set()
        jobs.join(timeout=120)
        time.sleep(1)  # requests in flight when wrk stopped commit

        accepted_events = results["single"]["ok"] + results["batch"]["ok"] * args.batch_size
        row = monitor.execute(
            "SELECT count(*), count(DISTINCT external_id) FROM crm_user_activities WHERE external_id LIKE %s",
            [f"load-{workload.run_id}-%"],
        ).fetchone()
        sessions = monitor.execute("SELECT count(*) FROM crm_coaching_sessions").fetchone()[0] - sessions_before
        monitor.close()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if not args.keep_db:
            database_recreate(server_url, db_name, drop_only=True)
        shutil.rmtree(work_dir, ignore_errors=True)

    workers, threads = os.environ.get("WEB_CONCURRENCY", "3"), os.environ.get("WEB_THREADS", "4")
    print(
        f"\n{os.cpu_count()} CPUs; gunicorn {workers} workers x {threads} threads + 1 Celery worker; "
        f"{args.users} demo users; {args.seconds:g} s"
    )
    header = ("endpoint", "conns", "requests", "req/s", "events/s", "p50 ms", "p99 ms", "errors")
    print("{:8} {:>5} {:>9} {:>8} {:>9} {:>8} {:>8} {:>7}  statuses".format(*header))
    total_errors = 0
    for name, result in results.items():
        per_request = args.batch_size if name == "batch" else 1
        errors = result["non_2xx"] + result["socket_errors"]
        total_errors += errors
        events = f"{result['ok_rps'] * per_request:9.1f}" if name in ("single", "batch") else f"{'':>9}"
        print(
            f"{name:8} {connections[name]:5d} {result['requests']:9d} {result['rps']:8.1f} {events} "
            f"{result['p50_ms']:8.1f} {result['p99_ms']:8.1f} {errors:7d}  {result['statuses']}"
            + ("  RAN OUT: requests resent" if result["repeats"] and name != "reads" else "")
        )
    job_seconds = ", ".join(
        f"{run['status']} in {run['seconds']:.1f} s" + (f" ({run['error'][:300]})" if run["error"] else "")
        for run in jobs.runs
    )
    print(f"jobs     weekly churn assessment runs: {len(jobs.runs)} ({job_seconds}); errors: {jobs.errors or 0}")
    total_errors += len(jobs.errors) + sum(run["status"] != "succeeded" for run in jobs.runs)
    stored, distinct = row
    print(
        f"\nrows afterwards: {stored} activities from this run, {distinct} distinct external ids, "
        f"{accepted_events} events answered 2xx; {sessions} new coaching sessions, "
        f"{results['ask']['ok']} asks answered 200"
    )
    # wrk stops counting at the deadline; requests then in flight still commit (at most one per
    # connection): stored rows may exceed the 2xx count by that much, never fall short of it.
    in_flight_max = connections["single"] + connections["batch"] * args.batch_size
    lost = max(0, accepted_events - distinct)
    duplicated = stored - distinct
    print(f"in flight at the stop (stored - 2xx): {distinct - accepted_events} (at most {in_flight_max})")
    total_errors += distinct - accepted_events > in_flight_max
    # An ask in flight at the stop is stored but not counted (at most one per connection).
    total_errors += not 0 <= sessions - results["ask"]["ok"] <= connections["ask"]
    print(f"lost: {lost}, duplicated: {duplicated}, errors: {total_errors}")
    return 0 if lost == 0 and duplicated == 0 and total_errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
