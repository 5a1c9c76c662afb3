"""Benchmark `seed_demo`: users/s and activity rows/s, against a baseline measured in the same run.

Baseline: the same number of rows inserted by one INSERT ... SELECT into an unindexed, unlogged copy
of crm_user_activities (the floor PostgreSQL needs to write that many rows here). The ratio says what
the real table's indexes, constraints and the per-user work cost on top.

    .venv/bin/python bench/seed_demo.py [--users 10000]

Runs on a scratch database on the same server, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10000)
    args = parser.parse_args()

    import django

    from yahealthy_crm.bootstrap import local_environment_prepare

    local_environment_prepare()  # the secret (and, without DATABASE_URL, the embedded server)
    django.setup()
    from django.db import connection

    from tests.support import database_url

    name = f"bench_seed_{uuid.uuid4().hex[:6]}"
    admin_dsn = database_url("postgres").replace("postgres://", "postgresql://", 1)
    bench_url = database_url(name)
    connection.close()
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": bench_url}
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "seed_demo", "--users", str(args.users), "--no-progress"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        seed_s = time.perf_counter() - started
        with psycopg.connect(bench_url.replace("postgres://", "postgresql://", 1), autocommit=True) as db:
            rows = db.execute("SELECT count(*) FROM crm_user_activities").fetchone()[0]
            db.execute(
                "CREATE UNLOGGED TABLE baseline (LIKE crm_user_activities INCLUDING DEFAULTS INCLUDING IDENTITY)"
            )
            started = time.perf_counter()
            db.execute(
                "INSERT INTO baseline (user_id, activity_type, external_id, source, occurred_at, logged_date, "
                "payload, calories_kcal, protein_g, carbs_g, fat_g, created_at, updated_at) "
                "SELECT 'demo_' || (i %% %s), 'food_log', 'b' || i, 'app', now(), current_date, "
                "jsonb_build_object('food_name', 'Grilled Chicken', 'calories', 450), 450, 45, 50, 12, now(), now() "
                "FROM generate_series(1, %s) AS i",
                [args.users, rows],
            )
            baseline_s = time.perf_counter() - started
        second = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "seed_demo", "--users", str(args.users), "--no-progress"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        rerun_s = time.perf_counter() - second
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(
        f"seed_demo --users {args.users}: {seed_s:.1f} s, {args.users / seed_s:.0f} users/s, {rows / seed_s:.0f} rows/s"
    )
    print(f"baseline bare INSERT of {rows} rows: {baseline_s:.1f} s, {rows / baseline_s:.0f} rows/s")
    print(f"ratio seed_demo / baseline time: {seed_s / baseline_s:.1f}x")
    print(f"second run (idempotent, nothing to do): {rerun_s:.1f} s")


if __name__ == "__main__":
    main()
