"""Benchmark of the weekly churn job: training and scoring + writing at several sizes.

    .venv/bin/python bench/churn_job.py [--sizes 10000,30000,100000] [--activities 30] [--seed 11]
                                        [--budget 1500] [--keep]

Per size, in a throw-away database `yahealthy_churnbench` on the configured PostgreSQL (DATABASE_URL,
else the embedded server under var/pgdata), dropped, recreated and migrated for each size, dropped at
the end unless --keep:

- load: `size` profiles and on average `--activities` activities per user over the last 120 days,
  written with COPY into crm_user_profiles and crm_user_activities (columns from the models' _meta,
  the embedding left NULL), then ANALYZE (a fresh bulk load has no planner statistics). Rhythms:
  daily loggers, weekly users, people who stopped 15-100 days ago, sporadic users.
- train: `coaching.churn_model.churn_model_train()` (training set + backtest + fit + store).
- assess: `coaching.retention.churn_assess_users()` with the model just trained: wall time, SQL
  statements (CaptureQueriesContext) and ru_maxrss growth of that run; then a second run (same week:
  the history rows are updated) under tracemalloc for the peak of Python allocations.

Targets: 100k users scored and written < 20 s, growing linearly; training on 100k < 60 s.
A size whose linear extrapolation from the previous one would overrun `--budget` seconds is skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database_recreate, with_database  # noqa: E402
from bench.support import server_url as configured_server_url  # noqa: E402

BENCH_DB = "yahealthy_churnbench"
HISTORY_DAYS = 120
RHYTHMS = (("daily", 0.2), ("weekly", 0.3), ("stopped", 0.3), ("sporadic", 0.2))
# (activity type, share, typed columns, payload)
ACTIVITY_KINDS = (
    ("food_log", 0.55, {"calories_kcal": "450.0", "protein_g": "30.0", "carbs_g": "50.0", "fat_g": "12.0"},
     {"food_name": "Oats with yoghurt", "calories": 450}),
    ("exercise", 0.15, {"exercise_minutes": "40", "calories_burned_kcal": "320.0"},
     {"exercise_type": "running", "duration_minutes": 40}),
    ("weight_log", 0.10, {"weight_kg": "78.4"}, {"weight_kg": 78.4}),
    ("water_log", 0.10, {"water_ml": "500"}, {"amount_ml": 500}),
    ("sleep_log", 0.05, {"sleep_hours": "7.50"}, {"hours": 7.5}),
    ("app_open", 0.05, {}, {}),
)  # fmt: skip
NULL = "\\N"


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _logging_days(rng: random.Random, rhythm: str) -> list[int]:
    """Days ago (1..HISTORY_DAYS) on which a user of `rhythm` logs, most recent first."""
    if rhythm == "daily":
        start, length = rng.randint(1, 2), rng.randint(20, 110)
        days = [d for d in range(start, min(start + length, HISTORY_DAYS + 1)) if rng.random() > 0.1]
    elif rhythm == "weekly":
        days = list(range(rng.randint(1, 7), HISTORY_DAYS + 1, 7))
    elif rhythm == "stopped":
        stop, gap = rng.randint(15, 100), rng.randint(1, 3)
        days = list(range(stop, HISTORY_DAYS + 1, gap))
    else:  # sporadic
        days = sorted(rng.sample(range(1, HISTORY_DAYS + 1), rng.randint(5, 25)))
    return days or [rng.randint(1, HISTORY_DAYS)]


def _row_template(model, values: dict[str, str | None], placeholders: set[str]) -> str:
    """One COPY text line for `model`, columns in _meta order (pk and embedding excluded): a literal,
    a `{placeholder}` or NULL (nullable columns only)."""
    parts = []
    for field in _columns(model):
        if field.column in placeholders:
            parts.append("{" + field.column + "}")
            continue
        value = values.get(field.column)
        if value is None and not field.null:
            raise SystemExit(f"{model._meta.db_table}.{field.column} is NOT NULL and the benchmark gives no value")
        parts.append(NULL if value is None else _copy_text(value).replace("{", "{{").replace("}", "}}"))
    return "\t".join(parts) + "\n"


def _columns(model) -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key and f.column != "embedding"]


def _copy(cursor, model, lines) -> None:
    columns = ", ".join(f'"{f.column}"' for f in _columns(model))
    with cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for n, line in enumerate(lines, 1):
            buffer.write(line)
            if n % 50000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def load(users: int, activities_per_user: int, seed: int) -> int:
    """COPY `users` profiles and their activities; returns the number of activities."""
    from django.db import connection
    from django.utils import timezone

    from activities.models import UserActivity
    from profiles.models import CrmUserProfile

    rng = random.Random(seed)
    today = timezone.localdate()
    now = timezone.now()
    tz = timezone.get_current_timezone()

    def stamp(days_ago: int, minute: int) -> str:
        moment = dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time.min, tzinfo=tz)
        return (moment + dt.timedelta(minutes=minute)).isoformat(sep=" ")

    profile_values = {
        "activity_level": "",
        "primary_goal": "",
        "engagement_tier": "bronze",
        "churn_risk": "0",
        "churn_factors": "{}",
        "churn_band": "low",
        "lifecycle_stage": "current",
        "consent_ai_processing": "t",
        "consent_marketing": "f",
        "email_hash": "",
        "phone_hash": "",
        "field_provenance": "{}",
    }
    profile_line = _row_template(CrmUserProfile, profile_values, {"user_id", "created_at", "updated_at"})
    kinds, weights, activity_lines = [], [], {}
    for kind, share, typed, payload in ACTIVITY_KINDS:
        values = {"activity_type": kind, "source": "app", "payload": json.dumps(payload), **typed}
        placeholders = {"user_id", "external_id", "occurred_at", "logged_date", "created_at", "updated_at"}
        activity_lines[kind] = _row_template(UserActivity, values, placeholders)
        kinds.append(kind)
        weights.append(share)
    rhythms = [name for name, _ in RHYTHMS]
    rhythm_weights = [share for _, share in RHYTHMS]

    plans = []  # (user_id, days ago of each activity)
    for n in range(users):
        days = _logging_days(rng, rng.choices(rhythms, rhythm_weights)[0])
        count = rng.randint(max(1, activities_per_user - 25), activities_per_user + 25)  # mean: activities_per_user
        # Fewer activities than logging days: some days skipped; more: several activities a day.
        chosen = rng.sample(days, count) if count <= len(days) else [days[i % len(days)] for i in range(count)]
        plans.append((f"bench_c{n:07d}", chosen))

    def profile_rows():
        for user_id, chosen in plans:
            created = stamp(max(chosen) + rng.randint(0, 60), 0)
            yield profile_line.format(user_id=user_id, created_at=created, updated_at=now.isoformat(sep=" "))

    total = 0

    def activity_rows():
        nonlocal total
        for user_id, chosen in plans:
            for days_ago in chosen:
                total += 1
                occurred = stamp(days_ago, rng.randrange(6 * 60, 23 * 60))
                yield activity_lines[rng.choices(kinds, weights)[0]].format(
                    user_id=user_id,
                    external_id=f"b{total}",
                    occurred_at=occurred,
                    logged_date=(today - dt.timedelta(days=days_ago)).isoformat(),
                    created_at=occurred,
                    updated_at=occurred,
                )

    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        _copy(cursor, CrmUserProfile, profile_rows())
        _copy(cursor, UserActivity, activity_rows())
        cursor.execute("ANALYZE")
    return total


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def bench_size(users: int, args) -> dict:
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from coaching.churn_model import churn_model_train
    from coaching.retention import churn_assess_users

    connection.close()
    database_recreate(args.server_url, BENCH_DB)
    call_command("migrate", verbosity=0)

    started = time.perf_counter()
    activities = load(users, args.activities, args.seed)
    load_s = time.perf_counter() - started

    rss_start = _maxrss_mb()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as train_queries:
        model = churn_model_train()
    train_s = time.perf_counter() - started

    rss_before = _maxrss_mb()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        assessed = churn_assess_users()
    assess_s = time.perf_counter() - started
    rss_growth = _maxrss_mb() - rss_before
    captured_mb = sum(len(q["sql"]) for q in queries.captured_queries) / 2**20
    assert assessed == users, (assessed, users)

    tracemalloc.start()
    started = time.perf_counter()
    churn_assess_users()
    traced_s = time.perf_counter() - started
    peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    backtest = (model.quality or {}).get("backtest") or {}
    print(
        f"  {users:,} users: model v{model.version} {model.kind}, {model.training_rows:,} training rows, "
        f"backtest AUC {(backtest.get('model') or {}).get('auc')}, churn rate {backtest.get('churn_rate')}; "
        f"train {len(train_queries)} statements, ru_maxrss +{rss_before - rss_start:.0f} MB; "
        f"assess ru_maxrss +{rss_growth:.0f} MB "
        f"(of which ~{captured_mb:.0f} MB captured SQL text); traced re-run {traced_s:.1f} s",
        flush=True,
    )
    return {
        "users": users,
        "activities": activities,
        "load_s": load_s,
        "train_s": train_s,
        "assess_s": assess_s,
        "statements": len(queries),
        "peak_mb": peak_mb,
        "rss_mb": rss_growth,
    }


def report(results: list[dict], skipped: list[int]) -> None:
    print()
    print(f"{'users':>8} {'activities':>11} {'load s':>7} {'train s':>8} {'assess s':>9} {'statements':>11} "
          f"{'peak MB':>8} {'rss +MB':>8}")  # fmt: skip
    for r in results:
        print(f"{r['users']:>8,} {r['activities']:>11,} {r['load_s']:>7.1f} {r['train_s']:>8.1f} "
              f"{r['assess_s']:>9.2f} {r['statements']:>11} {r['peak_mb']:>8.0f} {r['rss_mb']:>8.0f}")  # fmt: skip
    for users in skipped:
        print(f"{users:>8,}  skipped: the linear extrapolation overruns --budget")
    if not results:
        return
    small, large = results[0], results[-1]
    if large is not small:
        for key, label in (("assess_s", "assess"), ("train_s", "train")):
            ratio = (large[key] / large["users"]) / (small[key] / small["users"])
            print(f"linearity ({label}): time per user at {large['users']:,} / at {small['users']:,} = {ratio:.2f} "
                  f"(1.00 = linear)")  # fmt: skip
    scale = 100_000 / large["users"]
    how = "measured" if large["users"] == 100_000 else f"linear extrapolation from {large['users']:,}"
    assess_100k, train_100k = large["assess_s"] * scale, large["train_s"] * scale
    print(f"target: 100k users scored and written < 20 s: {assess_100k:.1f} s ({how}) "
          f"{'met' if assess_100k < 20 else 'MISSED'}")  # fmt: skip
    print(f"target: training on 100k users < 60 s: {train_100k:.1f} s ({how}) {'met' if train_100k < 60 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--activities", type=int, default=30, help="activities per user on average")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--budget", type=float, default=1500, help="seconds; larger sizes are skipped past it")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size.strip()]

    args.server_url = configured_server_url()
    database_recreate(args.server_url, BENCH_DB)
    os.environ["DATABASE_URL"] = with_database(args.server_url, BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")
    os.environ["CELERY_QUEUE_DIR"] = tempfile.mkdtemp(prefix="churnbench-queue-")
    import django

    from yahealthy_crm.bootstrap import local_environment_prepare

    local_environment_prepare()  # the secret (and, without DATABASE_URL, the embedded server)
    django.setup()
    import logging

    logging.disable(logging.WARNING)

    results, skipped = [], []
    run_started = time.perf_counter()
    try:
        for users in sizes:
            if results:
                last = results[-1]
                per_user = (last["wall_s"]) / last["users"]
                if time.perf_counter() - run_started + per_user * users > args.budget:
                    skipped.append(users)
                    continue
            print(f"size {users:,}...", flush=True)
            started = time.perf_counter()
            result = bench_size(users, args)
            result["wall_s"] = time.perf_counter() - started
            results.append(result)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database_recreate(args.server_url, BENCH_DB, drop_only=True)
    report(results, skipped)


if __name__ == "__main__":
    main()
