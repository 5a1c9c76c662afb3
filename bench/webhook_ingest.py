"""Benchmark: signed app webhooks into gunicorn vs bare Django reference views, same server, same run.

    .venv/bin/python bench/webhook_ingest.py [--seconds 20] [--connections 16] [--batch-size 500] [--new-users]

Creates a throw-away database `<db>_bench` on the configured PostgreSQL (DATABASE_URL, else the
embedded server under var/pgdata), migrates it, creates the benchmark users' profiles (unless
--new-users), starts gunicorn on a free port as `make run` does (gunicorn.conf.py: gthread workers,
access log) with the project's WSGI app plus two reference views. The load comes from `wrk`
replaying requests generated (and signed, with the current time) in Python right before each run
(bench/wrk_replay.lua), so the load generator spends little CPU next to the server. Targets, each
after a short warm-up, for a fixed time:

- bare: the bare Django JSON view (parse the body, answer JSON; no database; the ceiling);
- insert: the one-INSERT view (parse the body and INSERT it, one autocommit);
- single: `POST /api/crm/webhooks/app-event`, one signed food_log create per request;
- batch: `POST /api/crm/webhooks/app-events`, --batch-size signed food_log creates per request
  (skipped, with a note, while the endpoint answers 404).

Per target: requests/s, events/s, p50/p99 latency, errors and non-2xx, the CPU seconds the gunicorn
processes and the PostgreSQL server processes used during the measured window (from /proc) per
event, the CPU time the hypervisor took from this machine (steal), and the events applied according
to the database; at the end, each target of the run met or missed. BENCH_ACCESS_LOG=<file> writes
gunicorn's access log (server-side time per request) there instead of /dev/null. Embedding sweeps
go to a temporary filesystem queue that nobody consumes (ingest cost only).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
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

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Steal above this share of the CPUs' time marks a run as taken on a crowded host.
STOLEN_NOTICEABLE = 0.05
PAYLOAD = {"food_name": "Grilled Chicken", "calories": 450, "protein": 45, "carbs": 50}
TARGETS = {
    # name: (path, signed)
    "bare": ("/bench/bare", False),
    "insert": ("/bench/one-insert", False),
    "single": ("/api/crm/webhooks/app-event", True),
    "batch": ("/api/crm/webhooks/app-events", True),
}
REFERENCE_RATE_GUESS = 3000  # requests/s used to size the reference views' files (they may wrap harmlessly)


# --- Requests, generated and signed up front --------------------------------------------------


@dataclass
class RequestFactory:
    port: int
    secret: str
    users: int
    batch_size: int
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    serial: int = 0  # every event of the run gets its own number: keys and webhook-ids never repeat

    def __post_init__(self) -> None:
        from standardwebhooks import Webhook

        self.webhook = Webhook(self.secret)

    def _event(self) -> tuple[str, dict]:
        self.serial += 1
        key = f"bench-{self.run_id}-{self.serial}"
        event = {
            "entityType": "food_log",
            "operation": "create",
            # Round robin: consecutive events are from different users (no lock waits between them).
            "userId": f"bench_user_{self.serial % self.users}",
            "externalId": key,
            "payload": PAYLOAD,
        }
        return key, event

    def body_and_headers(self, target: str, now: datetime) -> tuple[str, dict[str, str]]:
        if target == "batch":
            events = []
            for _ in range(self.batch_size):
                key, event = self._event()
                events.append({**event, "idempotencyKey": key})
            body = json.dumps({"events": events})
            key = f"bench-{self.run_id}-batch-{self.serial}"
        else:
            key, event = self._event()
            body = json.dumps(event)
        headers = signed_webhook_headers(self.webhook, key=key, body=body, now=now) if TARGETS[target][1] else {}
        return body, headers

    def raw(self, target: str, now: datetime) -> bytes:
        body, headers = self.body_and_headers(target, now)
        return request_raw(self.port, "POST", TARGETS[target][0], headers, body.encode())

    def write(self, target: str, count: int, prefix: Path, threads: int) -> tuple[int, int]:
        """Writes `count` requests signed now into `<prefix>.<thread>`; returns (count, bytes)."""
        now = datetime.now(UTC)
        per_thread = max(1, math.ceil(count / threads))
        total = 0
        for thread in range(threads):
            with open(f"{prefix}.{thread}", "wb") as out:
                for _ in range(per_thread):
                    raw = self.raw(target, now)
                    record_write(out, raw)
                    total += len(raw)
        return per_thread * threads, total


# --- CPU from /proc ------------------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, own utime+stime, reaped children's cutime+cstime), in clock ticks."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After "pid (comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based.
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14]))
    return table


def _tree(table: dict[int, tuple[int, int, int]], root: int) -> set[int]:
    members, grew = {root}, True
    while grew:
        grew = False
        for pid, (ppid, _, _) in table.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    return members & table.keys()


def _machine_busy_ticks() -> tuple[int, int, int]:
    """Busy, total and stolen clock ticks of all CPUs since boot (/proc/stat's first line).

    Steal is time a CPU of this virtual machine wanted to run while the host ran something else: on
    a crowded host it took up to half of the CPUs' time in a run, at twice the usual CPU per event
    (docs/sync.md "Benchmark").
    """
    with open("/proc/stat") as stat:
        values = [int(x) for x in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8]), values[7]


class CpuMeter:
    """CPU seconds of the gunicorn tree and of the PostgreSQL server between start() and stop().

    gunicorn: the master and its workers (with workers that exited, through the master's cutime).
    PostgreSQL: the postmaster, its server processes (checkpointer, WAL writer, io workers...) and
    the backends of the benchmark database; backends of other databases on the same server (a test
    suite, say) are left out and reported apart. Which database a backend serves comes from
    pg_stat_activity, sampled with /proc every SAMPLE_SECONDS during the window, so that backends
    that exit in the window (autovacuum workers, mostly) count with their last sampled CPU; what
    the postmaster reaped in the window is reported too (`postgres_reaped_s`, all databases).
    """

    SAMPLE_SECONDS = 0.25

    def __init__(self, gunicorn_pid: int, pg_conn, db_name: str) -> None:
        self.gunicorn_pid, self.pg_conn, self.db_name = gunicorn_pid, pg_conn, db_name
        self.own_backend = pg_conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.postmaster = None
        try:
            with open(f"/proc/{self.own_backend}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{ppid}/comm") as comm:
                if comm.read().strip() == "postgres":
                    self.postmaster = ppid
        except OSError:
            pass  # the server is not on this machine (or not visible): no PostgreSQL CPU figures

    def _sample(self) -> dict[int, tuple[int, int, int]]:
        table = _proc_table()
        self.databases.update(self.pg_conn.execute("SELECT pid, datname FROM pg_stat_activity").fetchall())
        if self.postmaster in table:
            for pid in _tree(table, self.postmaster):
                self.pg_last[pid] = table[pid][1]
        return table

    def _poll(self) -> None:
        while not self._stopping.wait(self.SAMPLE_SECONDS):
            self._sample()

    def start(self) -> None:
        self.databases: dict[int, str | None] = {}
        self.pg_last: dict[int, int] = {}
        self.start_table = self._sample()
        self.start_machine = _machine_busy_ticks()
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()

    def stop(self) -> dict:
        self._stopping.set()
        self._poller.join()
        end = self._sample()
        machine = _machine_busy_ticks()
        start = self.start_table

        def used(pid: int, now: int) -> int:
            return now - start.get(pid, (0, 0, 0))[1]

        def reaped(pid: int) -> int:
            return end[pid][2] - start.get(pid, (0, 0, 0))[2] if pid in end else 0

        nan = float("nan")
        gunicorn = nan
        if self.gunicorn_pid in end:
            ticks = sum(used(pid, end[pid][1]) for pid in _tree(end, self.gunicorn_pid))
            gunicorn = (ticks + reaped(self.gunicorn_pid)) / CLOCK_TICKS
        postgres = other_databases = exited = reaped_s = nan
        if self.postmaster in end:
            included = excluded = gone = 0
            for pid, now in self.pg_last.items():
                ticks = used(pid, now)
                if pid != self.own_backend and self.databases.get(pid) in (None, self.db_name):
                    included += ticks
                    gone += ticks if pid not in end else 0
                else:
                    excluded += ticks
            postgres, other_databases = included / CLOCK_TICKS, excluded / CLOCK_TICKS
            exited, reaped_s = gone / CLOCK_TICKS, reaped(self.postmaster) / CLOCK_TICKS
        busy = machine[0] - self.start_machine[0]
        total = machine[1] - self.start_machine[1]
        stolen = machine[2] - self.start_machine[2]
        return {
            "gunicorn_s": gunicorn,
            "postgres_s": postgres,
            "postgres_exited_s": exited,
            "postgres_reaped_s": reaped_s,
            "other_db_s": other_databases,
            "machine_busy": busy / total if total else nan,
            "machine_busy_s": busy / CLOCK_TICKS,
            "stolen": stolen / total if total else nan,
            "stolen_s": stolen / CLOCK_TICKS,
        }


# --- Runs ----------------------------------------------------------------------------------------


def _db_counts(conn) -> dict[str, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM crm_user_activities),"
        " (SELECT count(*) FROM crm_sync_events WHERE direction = 'inbound' AND status = 'success'),"
        " (SELECT count(*) FROM bench_insert_probe),"
        " (SELECT wal_bytes FROM pg_stat_wal),"
        " (SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables),"
        " (SELECT coalesce(sum(n_tup_hot_upd), 0) FROM pg_stat_user_tables)"
    ).fetchone()
    return {
        "activities": row[0],
        "sync_success": row[1],
        "probe_rows": row[2],
        # Write work, steadier than CPU time on a noisy machine: WAL of the whole server; row updates
        # in the benchmark database, and of those the HOT ones (no new index entries).
        "wal_bytes": int(row[3]),
        "rows_updated": int(row[4]),
        "rows_hot_updated": int(row[5]),
    }


def _stored_events(target: str, db: dict) -> int:
    return {"bare": 0, "insert": db["probe_rows"]}.get(target, db["activities"])


def _probe_batch(factory: RequestFactory, port: int) -> tuple[int, str]:
    """One small signed batch (2 events) before generating the large file: is the endpoint there?"""
    size, factory.batch_size = factory.batch_size, 2
    try:
        body, headers = factory.body_and_headers("batch", datetime.now(UTC))
    finally:
        factory.batch_size = size
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST", TARGETS["batch"][0], body=body.encode(), headers={"Content-Type": "application/json", **headers}
    )
    response = conn.getresponse()
    return response.status, response.read().decode(errors="replace")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per target")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per target")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (wrk -c)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (wrk -t; divides --connections)")
    parser.add_argument("--users", type=int, default=5000, help="distinct userIds (rate limit is per user)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per batch request")
    parser.add_argument(
        "--batch-connections",
        type=int,
        default=4,
        help="connections for the batch target (a high-volume sender sends a few large requests at a time)",
    )
    parser.add_argument("--new-users", action="store_true", help="users unknown to the CRM (first events)")
    parser.add_argument(
        "--targets", default="bare,insert,single,batch", help="comma-separated subset of bare,insert,single,batch"
    )
    parser.add_argument("--max-file-mb", type=int, default=1024, help="cap on one target's request file")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--keep-files", action="store_true", help="keep the request files and wrk logs")
    args = parser.parse_args()
    targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    if unknown := set(targets) - TARGETS.keys():
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if args.connections % args.threads:
        parser.error("--connections must be a multiple of --threads")
    if args.batch_connections % args.threads:
        parser.error("--batch-connections must be a multiple of --threads")
    if not shutil.which("wrk"):
        parser.error("wrk is not installed")

    server_url = configured_server_url()
    db_name = urllib.parse.urlsplit(server_url).path.lstrip("/") + "_bench"
    bench_url = with_database(server_url, db_name)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    work_dir = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    queue_dir = work_dir / "queue"
    queue_dir.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "CRM_WEBHOOK_SECRET": secret,
        "CELERY_QUEUE_DIR": str(queue_dir),
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
    port = free_port()
    # The settings of `make run` (gunicorn.conf.py in ROOT); the access log goes nowhere, but is written.
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "yahealthy_crm.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**env, "CRM_ACCESS_LOG": os.environ.get("BENCH_ACCESS_LOG", "/dev/null"), "GUNICORN_LOG_LEVEL": "warning"},
    )
    factory = RequestFactory(port=port, secret=secret, users=args.users, batch_size=args.batch_size)
    results: dict[str, dict] = {}
    notes: list[str] = []
    run_wrk = {"connections": args.connections, "threads": args.threads}
    try:
        server_wait_ready(port)
        monitor = psycopg.connect(bench_url, autocommit=True)
        meter = CpuMeter(gunicorn.pid, monitor, db_name)
        if meter.postmaster is None:
            notes.append("PostgreSQL CPU: the server's processes are not visible on this machine (n/a)")
        for target in targets:
            per_request = args.batch_size if target == "batch" else 1
            run_wrk = {
                "connections": args.batch_connections if target == "batch" else args.connections,
                "threads": args.threads,
            }
            prefix = work_dir / f"{target}.requests"
            if target == "batch":
                status, text = _probe_batch(factory, port)
                if status == 404:
                    print("batch: endpoint not available", flush=True)
                    notes.append("batch: endpoint not available (404)")
                    continue
                if not 200 <= status < 300:
                    print(f"batch: probe answered {status}: {text[:300]}; skipped", flush=True)
                    notes.append(f"batch: probe answered {status}, skipped")
                    continue
            # Warm-up; its rate sizes the measured file (never below a ceiling we know).
            if target == "single" and "bare" in results:
                warm_rate = results["bare"]["rps"]  # no endpoint outruns the bare view
            elif target == "batch":
                warm_rate = max(4 * run_wrk["connections"] / max(args.warmup, 1), 1)
            else:
                warm_rate = REFERENCE_RATE_GUESS if target in ("bare", "insert") else 1000
            factory.write(
                target, math.ceil(warm_rate * args.warmup * 1.5) + run_wrk["connections"], prefix, args.threads
            )
            warm = wrk_run(port, prefix, seconds=args.warmup, log=work_dir / f"{target}.warmup.log", **run_wrk)
            # The warm-up runs colder than the measured window: size with headroom over its rate.
            ceiling = warm["rps"] * 2
            if target in ("bare", "insert"):
                ceiling = max(ceiling, REFERENCE_RATE_GUESS)
            elif target == "single" and "bare" in results:
                ceiling = max(warm["rps"], results["bare"]["rps"])
            count = math.ceil(ceiling * args.seconds * 1.5) + run_wrk["connections"]
            approx_bytes = len(factory.raw(target, datetime.now(UTC))) + 16
            if count * approx_bytes > args.max_file_mb * 2**20:
                count = args.max_file_mb * 2**20 // approx_bytes
                notes.append(f"{target}: request file capped at --max-file-mb {args.max_file_mb} ({count} requests)")
            generated_at = time.monotonic()
            records, size = factory.write(target, count, prefix, args.threads)  # signed now
            generate_s = time.monotonic() - generated_at
            before = _db_counts(monitor)
            meter.start()
            rusage = resource.getrusage(resource.RUSAGE_CHILDREN)
            result = wrk_run(port, prefix, seconds=args.seconds, log=work_dir / f"{target}.log", **run_wrk)
            after_rusage = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = meter.stop()
            time.sleep(1.5)  # requests in flight when wrk stopped commit; backends report their statistics
            after = _db_counts(monitor)
            events = result["ok"] * per_request
            result.update(cpu)
            wrk_cpu_s = (after_rusage.ru_utime + after_rusage.ru_stime) - (rusage.ru_utime + rusage.ru_stime)
            result.update(
                records=records,
                file_mb=size / 2**20,
                generate_s=generate_s,
                events=events,
                events_per_s=events / result["seconds"],
                wrk_cpu_s=wrk_cpu_s,
                # Everything else that ran on the machine in the window (another test suite, say).
                others_s=cpu["machine_busy_s"]
                - cpu["gunicorn_s"]
                - (0 if math.isnan(cpu["postgres_s"]) else cpu["postgres_s"] + cpu["other_db_s"])
                - wrk_cpu_s
                - cpu["stolen_s"],
                db={key: after[key] - before[key] for key in after},
                gunicorn_ms_per_event=cpu["gunicorn_s"] * 1000 / events if events else float("nan"),
                postgres_ms_per_event=cpu["postgres_s"] * 1000 / events if events else float("nan"),
            )
            results[target] = result
            _print_target(target, result, args)
        monitor.close()
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        if not args.keep_db:
            database_recreate(server_url, db_name, drop_only=True)
        if args.keep_files:
            print(f"\nrequest files and wrk logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)

    _print_summary(results, notes, args)
    return 0


def _print_target(target: str, r: dict, args) -> None:
    db = r["db"]
    applied = {
        "bare": "nothing stored",
        "insert": f"{db['probe_rows']} probe rows",
        "single": f"{db['activities']} activities, {db['sync_success']} successful sync events",
        "batch": f"{db['activities']} activities, {db['sync_success']} successful sync events",
    }[target]
    stored = _stored_events(target, db)
    writes = (
        f"\n  PostgreSQL writes per stored event: {db['wal_bytes'] / stored:.0f} WAL bytes (whole server), "
        f"{db['rows_updated'] / stored:.2f} row updates, "
        f"{db['rows_hot_updated'] / max(db['rows_updated'], 1):.0%} of them HOT"
        if stored
        else ""
    )
    print(
        f"\n{target}: {r['requests']} requests in {r['seconds']:.1f} s = {r['rps']:.1f} requests/s, "
        f"{r['events_per_s']:.1f} events/s (2xx x {args.batch_size if target == 'batch' else 1}); "
        f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms\n"
        f"  statuses {r['statuses']}, non-2xx {r['non_2xx']}, socket errors/timeouts {r['socket_errors']}\n"
        f"  CPU in the window: gunicorn {r['gunicorn_s']:.2f} s ({r['gunicorn_ms_per_event']:.2f} ms/event), "
        f"PostgreSQL {r['postgres_s']:.2f} s ({r['postgres_ms_per_event']:.2f} ms/event; "
        f"{r['postgres_exited_s']:.2f} s of it by backends that exited; the postmaster reaped "
        f"{r['postgres_reaped_s']:.2f} s, all databases), wrk {r['wrk_cpu_s']:.2f} s\n"
        f"  machine busy {r['machine_busy']:.0%} of {os.cpu_count()} CPUs; other processes {r['others_s']:.2f} s; "
        f"stolen by the hypervisor {r['stolen_s']:.2f} s ({r['stolen']:.0%} of the CPUs' time)"
        + (f"; other databases on the server {r['other_db_s']:.2f} s (left out)" if r["other_db_s"] > 0 else "")
        + f"\n  database: {applied} in the window (+1.5 s)"
        + writes
        + "\n"
        f"  request file: {r['records']} requests, {r['file_mb']:.1f} MB, generated and signed in "
        f"{r['generate_s']:.1f} s",
        flush=True,
    )
    if r["repeats"] and target in ("bare", "insert"):
        print(f"  request file used up: {r['repeats']} requests resent (harmless: nothing idempotent)")
    elif r["repeats"]:
        print(
            f"  RAN OUT: the request file was used up; {r['repeats']} requests were resent "
            "(idempotent replays: these figures are not clean)",
            flush=True,
        )


def _targets(get) -> list[tuple[str, float | None, object]]:
    """The sync-at-scale targets on the 2-core machine: (label with its goal, this run's value, test)."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or not b else a / b

    insert_rps = get("insert", "ok_rps")
    return [
        (
            "single events/s : insert requests/s >= 0.35",
            ratio(get("single", "events_per_s"), insert_rps),
            lambda v: v >= 0.35,
        ),
        ("single p99 < 100 ms", get("single", "p99_ms"), lambda v: v < 100),
        ("batch events/s : insert requests/s >= 4", ratio(get("batch", "events_per_s"), insert_rps), lambda v: v >= 4),
        ("batch p99 < 1000 ms", get("batch", "p99_ms"), lambda v: v < 1000),
        (
            "batch : single PostgreSQL CPU per event < 0.1",
            ratio(get("batch", "postgres_ms_per_event"), get("single", "postgres_ms_per_event")),
            lambda v: v < 0.1,
        ),
    ]


def _print_summary(results: dict[str, dict], notes: list[str], args) -> None:
    workers, threads = os.environ.get("WEB_CONCURRENCY", "3"), os.environ.get("WEB_THREADS", "4")
    print(
        f"\ngunicorn (gunicorn.conf.py): {workers} gthread workers x {threads} threads; {os.cpu_count()} CPUs; "
        f"wrk {args.connections} connections ({args.batch_connections} for batch) in {args.threads} threads; "
        f"{args.seconds:g} s per target after "
        f"{args.warmup:g} s warm-up; {'new' if args.new_users else 'known'} users ({args.users}); "
        f"batch size {args.batch_size}"
    )
    for note in notes:
        print(f"note: {note}")
    if crowded := [target for target, r in results.items() if r["stolen"] > STOLEN_NOTICEABLE]:
        print(
            f"note: the hypervisor took over {STOLEN_NOTICEABLE:.0%} of the CPUs' time during "
            f"{', '.join(crowded)}: rates are low and CPU per event high there; compare runs without steal"
        )

    def get(target: str, key: str) -> float | None:
        return results[target][key] if target in results else None

    print('targets of this run (docs/sync.md "Benchmark"), with the ratios:')
    for label, value, goal in _targets(get):
        verdict = "n/a" if value is None or math.isnan(value) else ("met" if goal(value) else "MISSED")
        print(f"  {label}: {'n/a' if value is None else f'{value:.3g}'}: {verdict}")
    for target in ("single", "batch"):
        if target in results:
            db = results[target]["db"]
            print(
                f"{target}: events applied according to the database: {db['activities']} activities, "
                f"{db['sync_success']} successful sync events (wrk 2xx x events per request: "
                f"{results[target]['events']})"
            )
    print(
        f"\n_{date.today().isoformat()}, {args.seconds:g} s per target, {args.connections} connections "
        f"({args.batch_connections} for batch), "
        f"{'new' if args.new_users else 'known'} users_\n"
    )
    print(
        "| target | requests/s | events/s | p50 ms | p99 ms | non-2xx + errors | gunicorn CPU ms/event "
        "| PostgreSQL CPU ms/event | applied (DB) | WAL bytes/event | CPU stolen |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for target, r in results.items():
        stored = _stored_events(target, r["db"])
        print(
            f"| {target} | {r['rps']:.0f} | {r['events_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
            f"| {r['non_2xx'] + r['socket_errors']} | {r['gunicorn_ms_per_event']:.2f} "
            f"| {r['postgres_ms_per_event']:.2f} | {stored or '-'} "
            f"| {round(r['db']['wal_bytes'] / stored) if stored else '-'} | {r['stolen']:.0%} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
