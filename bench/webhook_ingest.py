"""Benchmark: signed app webhooks into gunicorn vs a bare Django JSON view, same server, same run.

    .venv/bin/python bench/webhook_ingest.py [--seconds 20] [--clients 16] [--new-users]

Creates a throw-away database `<db>_bench` on the configured PostgreSQL (DATABASE_URL, else the
embedded server under var/pgdata), migrates it, creates the benchmark users' profiles (unless
--new-users), starts gunicorn on a free port as `make run` does (gunicorn.conf.py: gthread workers,
access log) with the project's WSGI app plus two reference views, drives it from client processes
with keep-alive connections for a fixed time per target, then prints events/s, p50 and p99 latency
and each target's rate against the bare view's. The targets:

- bare Django JSON view: parse the body, answer JSON; no database (the ceiling);
- one-INSERT view: parse the body and INSERT it, one autocommit (the least any endpoint that keeps
  the event can do);
- signed webhook ingest: the real endpoint (food_log create events).

Embedding sweeps go to a temporary filesystem queue that nobody consumes (ingest cost only).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database_recreate, with_database  # noqa: E402
from bench.support import server_url as configured_server_url  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not become ready")


def _client_process(args: tuple) -> tuple[list[float], dict[int, int]]:
    port, path, seconds, threads, secret, proc_index, users, signed = args
    from standardwebhooks import Webhook

    webhook = Webhook(secret)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(thread_index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        local_latencies, local_statuses, n = [], {}, 0
        while time.monotonic() < deadline:
            n += 1
            external_id = f"p{proc_index}t{thread_index}n{n}"
            body = json.dumps(
                {
                    "entityType": "food_log",
                    "operation": "create",
                    "userId": f"bench_user_{(proc_index * 7919 + thread_index * 104729 + n) % users}",
                    "externalId": external_id,
                    "payload": {"food_name": "Grilled Chicken", "calories": 450, "protein": 45, "carbs": 50},
                }
            )
            headers = {"Content-Type": "application/json"}
            if signed:
                msg_id = f"msg_{uuid.uuid4().hex}"
                now = time.time()
                from datetime import UTC, datetime

                headers.update(
                    {
                        "webhook-id": msg_id,
                        "webhook-timestamp": str(int(now)),
                        "webhook-signature": webhook.sign(msg_id, datetime.fromtimestamp(now, tz=UTC), body),
                        "Idempotency-Key": f"bench:{external_id}:{uuid.uuid4().hex[:8]}",
                    }
                )
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            local_latencies.append(time.perf_counter() - started)
            local_statuses[status] = local_statuses.get(status, 0) + 1
        with lock:
            latencies.extend(local_latencies)
            for status, count in local_statuses.items():
                statuses[status] = statuses.get(status, 0) + count

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, statuses


def _load(
    port: int,
    path: str,
    *,
    seconds: float,
    clients: int,
    processes: int,
    secret: str,
    users: int,
    signed: bool,
):
    per_process = max(1, clients // processes)
    jobs = [(port, path, seconds, per_process, secret, p, users, signed) for p in range(processes)]
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=processes) as pool:
        results = list(pool.map(_client_process, jobs))
    elapsed = time.monotonic() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    statuses: dict[int, int] = {}
    for _, st in results:
        for status, count in st.items():
            statuses[status] = statuses.get(status, 0) + count
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    return {
        "requests": len(latencies),
        "ok": ok,
        "statuses": statuses,
        "rate": ok / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections in total")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--users", type=int, default=5000, help="distinct userIds (rate limit is per user)")
    parser.add_argument("--new-users", action="store_true", help="users unknown to the CRM (first events)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    server_url = configured_server_url()
    db_name = urllib.parse.urlsplit(server_url).path.lstrip("/") + "_bench"
    bench_url = with_database(server_url, db_name)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    queue_dir = tempfile.mkdtemp(prefix="crm-bench-queue-")
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "CRM_WEBHOOK_SECRET": secret,
        "CELERY_QUEUE_DIR": queue_dir,
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    database_recreate(server_url, db_name)
    import psycopg

    with psycopg.connect(bench_url, autocommit=True) as conn:  # the one-INSERT view's table
        conn.execute("CREATE TABLE bench_insert_probe (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    if not args.new_users:
        # The steady state: events come from users the CRM already knows (a new user's first event
        # also creates the profile and its audit row).
        create_profiles = (
            "from profiles.models import CrmUserProfile as P; "
            f"P.objects.bulk_create([P(user_id=f'bench_user_{{i}}') for i in range({args.users})], batch_size=1000)"
        )
        subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", create_profiles], cwd=ROOT, env=env, check=True
        )
    port = _free_port()
    # The settings of `make run` (gunicorn.conf.py in ROOT); the access log goes nowhere, but is written.
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "yahealthy_crm.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**env, "CRM_ACCESS_LOG": "/dev/null", "GUNICORN_LOG_LEVEL": "warning"},
    )
    try:
        _wait_ready(port)
        common = {
            "clients": args.clients,
            "processes": args.processes,
            "secret": secret,
            "users": args.users,
        }
        targets = [
            ("bare Django JSON view", "/bench/bare", False),
            ("one-INSERT view", "/bench/one-insert", False),
            ("signed webhook ingest", "/api/crm/webhooks/app-event", True),
        ]
        for _, path, signed in targets:
            _load(port, path, seconds=args.warmup, signed=signed, **common)
        results = {
            name: _load(port, path, seconds=args.seconds, signed=signed, **common) for name, path, signed in targets
        }
        with psycopg.connect(bench_url) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM crm_sync_events WHERE direction = 'inbound' AND status = 'success'"
            ).fetchone()[0]
            activities = conn.execute("SELECT count(*) FROM crm_user_activities").fetchone()[0]
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        if not args.keep_db:
            database_recreate(server_url, db_name, drop_only=True)

    workers, threads = os.environ.get("WEB_CONCURRENCY", "3"), os.environ.get("WEB_THREADS", "4")
    print(
        f"\ngunicorn (gunicorn.conf.py): {workers} gthread workers x {threads} threads; {os.cpu_count()} CPUs; "
        f"{args.clients} keep-alive clients in {args.processes} processes; {args.seconds:g} s per target; "
        f"{'new' if args.new_users else 'known'} users\n"
    )
    bare_rate = results["bare Django JSON view"]["rate"]
    print(f"{'target':<26}{'events/s':>10}{'vs bare':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}  statuses")
    for name, result in results.items():
        print(
            f"{name:<26}{result['rate']:>10.1f}{result['rate'] / bare_rate:>9.1%}{result['p50_ms']:>9.2f}"
            f"{result['p99_ms']:>9.2f}{result['requests']:>10}  {result['statuses']}"
        )
    ingest = results["signed webhook ingest"]
    print(
        f"\ningest / bare rate: {ingest['rate'] / bare_rate:.1%}, p99 {ingest['p99_ms']:.1f} ms "
        "(sync target: >= 50%, p99 < 50 ms)"
    )
    # Warm-up ingest requests are stored too; every accepted event is one success row and one activity.
    print(f"stored: {stored} success sync events, {activities} activities (accepted incl. warm-up)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
