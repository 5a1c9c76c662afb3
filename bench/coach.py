"""Benchmark of the AI coach: offline asks/s, coach overhead per ask, per-user vector search.

    .venv/bin/python bench/coach.py [--asks 300] [--rows 1000000] [--users 500] [--queries 200]
                                    [--skip-asks] [--skip-search] [--keep]

Runs in a throw-away database `<db>_coachbench` on the configured PostgreSQL (DATABASE_URL, else the
embedded server under var/pgdata), migrated from scratch, dropped at the end unless --keep.

1. Offline asks/s: POST /api/crm/users/<id>/ask through Django's full stack (service key auth,
   validation, consent, rate limit, retrieval, tools, session, audit), one process.
2. Coach overhead per ask: the openai provider against a local OpenAI-compatible server that answers
   instantly with a three-round conversation (nutrition -> suggest_goal -> answer). Overhead = ask
   wall time minus the time the server spent producing responses (so it includes HTTP on localhost).
3. Per-user search: `--rows` embeddings (256-d, clustered) for `--users` users, generated in SQL
   (INSERT ... SELECT), HNSW index built after the load; p50/p95 of `vector_search_by_user` (the
   production selector) for random users, recall@10 against exact search of the same user.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database_recreate, with_database  # noqa: E402
from bench.support import server_url as configured_server_url  # noqa: E402

BENCH_DB = "yahealthy_coachbench"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- 1 + 2: asks ------------------------------------------------------------------------------------


def _seed_users(count: int) -> list[str]:
    from django.db import connection

    from profiles.models import CrmUserProfile

    user_ids = [f"bench_ask_{n:04d}" for n in range(count)]
    CrmUserProfile.objects.bulk_create(
        [CrmUserProfile(user_id=user_id, current_weight_kg=75, primary_goal="muscle_gain") for user_id in user_ids]
    )
    with connection.cursor() as cursor:
        # Two meals a day for 7 days, 40 g protein each (a 80 g/day average, the seed example).
        cursor.execute(
            """
            INSERT INTO crm_user_activities (user_id, activity_type, external_id, source, occurred_at,
                logged_date, payload, calories_kcal, protein_g, carbs_g, fat_g, created_at, updated_at)
            SELECT u, 'food_log', 'f' || d || m, 'app', now() - make_interval(days => d), current_date - d,
                   '{"food_name": "chicken and rice"}', 900, 40, 100, 30, now(), now()
            FROM unnest(%s::text[]) u, generate_series(0, 6) d, generate_series(1, 2) m
            """,
            [user_ids],
        )
    return user_ids


def _client():
    from rest_framework.test import APIClient

    from yahealthy_crm.models import ServiceApiKey

    _, key = ServiceApiKey.objects.create_key(name=f"bench-{time.time_ns()}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


MODEL_SECONDS: list[float] = []


def _run_asks(user_ids: list[str], asks: int, message: str) -> list[float]:
    import coaching.coach

    if not hasattr(coaching.services, "_bench_wrapped"):
        original = coaching.coach.coach_ask

        def timed(**kwargs):
            result = original(**kwargs)
            MODEL_SECONDS.append(result.model_seconds)
            return result

        coaching.coach.coach_ask = timed
        coaching.services._bench_wrapped = True
        import coaching.api

        coaching.api.coach_ask = timed
    client = _client()
    latencies = []
    for n in range(asks):
        user_id = user_ids[n % len(user_ids)]
        started = time.perf_counter()
        response = client.post(f"/api/crm/users/{user_id}/ask", {"message": message}, format="json")
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"ask failed: {response.status_code} {response.content[:300]!r}")
    return latencies


class _FakeModel(BaseHTTPRequestHandler):
    server_seconds = 0.0
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        started = time.perf_counter()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/embeddings"):
            from activities.embeddings import embed_text_hashing

            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            payload = {
                "object": "list",
                "model": body["model"],
                "data": [
                    {"object": "embedding", "index": i, "embedding": embed_text_hashing(t)} for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        else:
            rounds = sum(1 for m in body["messages"] if m["role"] == "assistant")
            if rounds == 0:
                calls = [("get_user_nutrition_summary", {"days": 7})]
            elif rounds == 1:
                calls = [
                    (
                        "suggest_goal",
                        {
                            "goal_type": "nutrition",
                            "metric": "protein_g",
                            "value": 120,
                            "unit": "g",
                            "rationale": "80 g now",
                            "target_days": None,
                        },
                    )
                ]
            else:
                calls = []
            message = {"role": "assistant", "content": None if calls else "Aim for 120 g of protein a day."}
            if calls:
                message["tool_calls"] = [
                    {"id": f"c{rounds}{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
                    for i, (n, a) in enumerate(calls)
                ]
            payload = {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "fake",
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        data = json.dumps(payload).encode()
        with _FakeModel.lock:
            _FakeModel.server_seconds += time.perf_counter() - started
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def bench_asks(asks: int) -> None:
    from django.conf import settings

    user_ids = _seed_users(asks // 5 + 10)  # at most 10 asks per user and minute: the rate limit
    message = "I've been struggling to eat enough protein. Help me set a goal."
    settings.OPENAI_API_KEY = ""
    from django.core.cache import cache

    _run_asks(user_ids[:3], 3, message)  # warm-up
    cache.clear()
    latencies = _run_asks(user_ids[3:], asks, message)
    total = sum(latencies)
    print(f"offline asks: {asks} in {total:.2f} s = {asks / total:.1f} asks/s (one process); "
          f"p50 {1000 * _pct(latencies, 0.5):.1f} ms, p95 {1000 * _pct(latencies, 0.95):.1f} ms")  # fmt: skip

    cache.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.OPENAI_API_KEY = "sk-bench"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    from coaching.models import CoachingSession

    count = min(asks, 200)
    _run_asks(user_ids[3:6], 3, message)
    cache.clear()
    MODEL_SECONDS.clear()
    _FakeModel.server_seconds = 0.0
    before = CoachingSession.objects.filter(provider="openai").count()
    latencies = _run_asks(user_ids[3:], count, message)
    assert CoachingSession.objects.filter(provider="openai").count() - before == count
    server.shutdown()
    overhead_ms = 1000 * (sum(latencies) - _FakeModel.server_seconds) / count
    own_ms = 1000 * (sum(latencies) - sum(MODEL_SECONDS)) / count
    print(f"openai provider vs instant fake server: {count} asks, 3 model rounds + 1 embedding call each; "
          f"p50 {1000 * _pct(latencies, 0.5):.1f} ms, p95 {1000 * _pct(latencies, 0.95):.1f} ms per ask; "
          f"server time {1000 * _FakeModel.server_seconds / count:.1f} ms/ask; "
          f"ask time minus server time {overhead_ms:.1f} ms/ask; coach overhead excluding model calls "
          f"(client-side wait incl. localhost HTTP) {own_ms:.1f} ms/ask (target < 50)")  # fmt: skip
    settings.OPENAI_API_KEY = ""


# --- 3: search ----------------------------------------------------------------------------------------


def bench_search(rows: int, users: int, queries: int) -> None:

    from django.db import connection

    from activities.selectors import vector_search_by_user
    from profiles.models import CrmUserProfile

    CrmUserProfile.objects.bulk_create(
        [CrmUserProfile(user_id=f"bench_v{u:06d}") for u in range(users)], batch_size=5000
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS crm_activity_embedding_hnsw")
        # Clustered vectors: one of 64 topic centres + two layers of noise from pools (pgvector `+`).
        for name, size, scale in (
            ("bench_centres", 64, 1.0),
            ("bench_noise1", 4096, 0.5),
            ("bench_noise2", 4096, 0.25),
        ):
            cursor.execute(
                f"CREATE TEMP TABLE {name} AS SELECT i, (SELECT array_agg(((random() - 0.5) * {scale})::real)"
                f" FROM generate_series(1, 256) WHERE i >= 0)::vector AS v FROM generate_series(0, {size - 1}) i"
            )
        cursor.execute(
            """
            INSERT INTO crm_user_activities (user_id, activity_type, external_id, source, occurred_at,
                logged_date, payload, embedding, created_at, updated_at)
            SELECT 'bench_v' || lpad((g %% %s)::text, 6, '0'), 'food_log', 'v' || g, 'app', now(), current_date,
                   '{}', c.v + n1.v + n2.v, now(), now()
            FROM generate_series(0, %s) g
            JOIN bench_centres c ON c.i = (g::bigint * 2654435761) %% 64
            JOIN bench_noise1 n1 ON n1.i = (g::bigint * 40503) %% 4096
            JOIN bench_noise2 n2 ON n2.i = (g / 4096 + g * 7) %% 4096
            """,
            [users, rows - 1],
        )
        loaded = time.perf_counter()
        print(f"loaded {rows:,} embeddings for {users:,} users in {loaded - started:.1f} s")
        cursor.execute("SET maintenance_work_mem = '2GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
        cursor.execute(
            "CREATE INDEX crm_activity_embedding_hnsw ON crm_user_activities"
            " USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        print(f"HNSW index (m=16, ef_construction=64) built in {time.perf_counter() - loaded:.1f} s")
        # Steady state: autovacuum sets the visibility map after a bulk load, which lets the exact
        # per-user search read vectors from its covering index alone (index-only scan).
        vacuumed = time.perf_counter()
        cursor.execute("VACUUM ANALYZE crm_user_activities")
        print(f"VACUUM ANALYZE in {time.perf_counter() - vacuumed:.1f} s")
        cursor.execute("SELECT v::text FROM bench_centres UNION ALL SELECT v::text FROM bench_noise1 LIMIT 64")
        centres = [json.loads(row[0]) for row in cursor.fetchall()]

    import activities.selectors

    # The same queries twice: first on a cold cache (right after the load), then warm, as a user's
    # repeated searches are in production.
    _search_round(users, queries, centres, "production selector, cold cache", vector_search_by_user)
    _search_round(users, queries, centres, "production selector, warm cache", vector_search_by_user)
    activities.selectors.VECTOR_SEARCH_EXACT_MAX_ROWS = 0  # every user through the HNSW index
    _search_round(users, queries, centres, "HNSW + relaxed iterative scan forced", vector_search_by_user)


def _search_round(users: int, queries: int, centres: list, label: str, vector_search_by_user) -> None:
    import random

    from django.db import connection, transaction

    rng = random.Random(7)
    latencies, recalls = [], []
    plan_uses_hnsw = None
    for n in range(queries + 10):
        user_id = f"bench_v{rng.randrange(users):06d}"
        centre = centres[rng.randrange(64)]
        query = [x + rng.uniform(-0.25, 0.25) for x in centre]
        t0 = time.perf_counter()
        found = vector_search_by_user(table="crm_user_activities", user_id=user_id, vector=query, limit=10)
        elapsed = time.perf_counter() - t0
        literal = "[" + ",".join(f"{x:.7g}" for x in query) + "]"
        with transaction.atomic(), connection.cursor() as cursor:
            if plan_uses_hnsw is None:
                cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                cursor.execute(
                    "EXPLAIN SELECT id FROM crm_user_activities WHERE user_id = %s AND embedding IS NOT NULL"
                    " ORDER BY embedding <=> %s::vector LIMIT 10",
                    [user_id, literal],
                )
                plan = "\n".join(row[0] for row in cursor.fetchall())
                plan_uses_hnsw = "crm_activity_embedding_hnsw" in plan
            # Exact: the expression `+ 0` cannot use the HNSW index; the user filter uses the btree.
            cursor.execute(
                "SELECT id FROM crm_user_activities WHERE user_id = %s AND embedding IS NOT NULL"
                " ORDER BY (embedding <=> %s::vector) + 0 LIMIT 10",
                [user_id, literal],
            )
            exact = {row[0] for row in cursor.fetchall()}
        if n < 10:
            continue  # warm-up
        latencies.append(elapsed)
        recalls.append(len(exact & {row_id for row_id, _ in found}) / max(len(exact), 1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_user_activities")
        rows = cursor.fetchone()[0]
    print(f"{label}: per-user search over {rows:,} embeddings ({rows // users:,} per user), {queries} queries: "
          f"p50 {1000 * _pct(latencies, 0.5):.2f} ms, p95 {1000 * _pct(latencies, 0.95):.2f} ms "
          f"(target < 20), recall@10 {statistics.mean(recalls):.3f} (target >= 0.95), min {min(recalls):.2f}; "
          f"planner picks HNSW for the HNSW query: {plan_uses_hnsw}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asks", type=int, default=300)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-asks", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    server_url = configured_server_url()
    database_recreate(server_url, BENCH_DB)
    os.environ["DATABASE_URL"] = with_database(server_url, BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")
    os.environ["OPENAI_API_KEY"] = ""
    # Session-embedding tasks go to a throw-away filesystem queue nobody consumes (ask cost only).
    os.environ["CELERY_QUEUE_DIR"] = tempfile.mkdtemp(prefix="coachbench-queue-")
    import django

    from yahealthy_crm.bootstrap import local_environment_prepare

    local_environment_prepare()  # the secret (and, without DATABASE_URL, the embedded server)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    settings.LOGGING_CONFIG = None
    import logging

    logging.getLogger("coaching").setLevel(logging.ERROR)
    try:
        call_command("migrate", verbosity=0)
        if not args.skip_asks:
            bench_asks(args.asks)
        if not args.skip_search:
            bench_search(args.rows, args.users, args.queries)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database_recreate(server_url, BENCH_DB, drop_only=True)


if __name__ == "__main__":
    main()
