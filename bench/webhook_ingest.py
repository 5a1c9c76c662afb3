"""Benchmark: signed app webhooks into gunicorn vs a bare Django JSON view, same server, same run.

    .venv/bin/python bench/webhook_ingest.py [--seconds 20] [--clients 16] [--workers 3] [--threads 4]

Creates a throw-away database `<db>_bench` on the configured PostgreSQL (DATABASE_URL, else the
embedded server under var/pgdata), migrates it, starts gunicorn on a free port with the project's
WSGI app (plus /bench/bare), drives it from client processes with keep-alive connections for a
fixed time per target, then prints events/s, p50 and p99 latency and the ingest/bare ratio.
Embedding tasks go to a temporary filesystem queue that nobody consumes (ingest cost only).
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


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url
    from yahealthy_crm.embedded_postgres import embedded_database_url

    var_dir = Path(os.environ.get("CRM_VAR_DIR", ROOT / "var")).resolve()
    return embedded_database_url(var_dir / "pgdata")


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def _recreate_database(url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


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
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 3)))
    parser.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads per worker")
    parser.add_argument("--users", type=int, default=5000, help="distinct userIds (rate limit is per user)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    server_url = _server_url()
    db_name = urllib.parse.urlsplit(server_url).path.lstrip("/") + "_bench"
    bench_url = _with_database(server_url, db_name)
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
    _recreate_database(server_url, db_name)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = _free_port()
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "yahealthy_crm.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        _wait_ready(port)
        common = {
            "clients": args.clients,
            "processes": args.processes,
            "secret": secret,
            "users": args.users,
        }
        _load(port, "/bench/bare", seconds=args.warmup, signed=False, **common)
        _load(port, "/api/crm/webhooks/app-event", seconds=args.warmup, signed=True, **common)
        bare = _load(port, "/bench/bare", seconds=args.seconds, signed=False, **common)
        ingest = _load(port, "/api/crm/webhooks/app-event", seconds=args.seconds, signed=True, **common)
        import psycopg

        with psycopg.connect(bench_url) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM crm_sync_events WHERE direction = 'inbound' AND status = 'success'"
            ).fetchone()[0]
            activities = conn.execute("SELECT count(*) FROM crm_user_activities").fetchone()[0]
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        if not args.keep_db:
            _recreate_database(server_url, db_name, drop_only=True)

    print(
        f"\ngunicorn: {args.workers} gthread workers x {args.threads} threads; {os.cpu_count()} CPUs; "
        f"{args.clients} keep-alive clients in {args.processes} processes; {args.seconds:g} s per target\n"
    )
    print(f"{'target':<26}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}  statuses")
    for name, result in (("bare Django JSON view", bare), ("signed webhook ingest", ingest)):
        print(
            f"{name:<26}{result['rate']:>10.1f}{result['p50_ms']:>9.2f}{result['p99_ms']:>9.2f}"
            f"{result['requests']:>10}  {result['statuses']}"
        )
    ratio = ingest["rate"] / bare["rate"] if bare["rate"] else float("nan")
    print(f"\ningest / bare rate: {ratio:.1%}   (target >= 50%, p99 < 50 ms)")
    # Warm-up ingest requests are stored too; every accepted event is one success row and one activity.
    print(f"stored: {stored} success sync events, {activities} activities (accepted incl. warm-up)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
