"""Server time of the staff pages with many users: the churn dashboard, the user 360 page, the filtered
user list, its CSV export and GET /api/crm/users.

    .venv/bin/python bench/admin_pages.py [--users 10000] [--runs 20] [--keep]

In a throw-away database `yahealthy_adminbench` on the configured PostgreSQL (DATABASE_URL, else the
embedded server under var/pgdata), recreated and migrated: `seed_demo --users N` (demo users, 60 days
of logs, goals, insights, churn scores of this week), then 11 past weeks of churn history and retention
actions with outcomes (tests/staff_data.py), and the daily engagement refresh (lifecycle stages).

Each page is requested `--runs` times in process through Django's test client with a logged-in
superuser (the whole request: middleware, view, queries, template, pygal charts), after two warm-up
requests; it prints the median, p95 and max wall time and the SQL queries of one request. The
dashboard is measured twice: as staff see it (the retention outcome report reused, at most 10 minutes
old) and with that report recomputed on every request (the first visitor after 10 minutes).
Target: dashboard and 360 page under 300 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database_recreate, with_database  # noqa: E402
from bench.support import server_url as configured_server_url  # noqa: E402

BENCH_DB = "yahealthy_adminbench"


def _prepare(url: str, users: int) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--users", str(users), "--no-progress"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    print(f"migrate + seed_demo --users {users}: {time.perf_counter() - started:.1f} s")


def _measure(runs: int) -> None:
    """Runs inside a process whose DATABASE_URL is the bench database."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")
    import django

    from yahealthy_crm.bootstrap import local_environment_prepare

    local_environment_prepare()
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.cache import caches
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from coaching.dashboard import OUTCOMES_CACHE_KEY
    from coaching.lifecycle import engagement_daily_refresh
    from coaching.models import ChurnScoreWeekly
    from profiles.models import CrmUserProfile
    from tests.staff_data import churn_history_seed, retention_actions_seed
    from yahealthy_crm.models import ServiceApiKey

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    started = time.perf_counter()
    if ChurnScoreWeekly.objects.values("week").distinct().count() < 2:  # only the seed's own week yet
        engagement_daily_refresh()
        history = churn_history_seed()
        actions = retention_actions_seed()
        with connection.cursor() as cursor:
            # A bulk load leaves the visibility map empty (index-only scans then visit the heap) and no
            # statistics; autovacuum would do this within minutes on a live system.
            cursor.execute(
                "VACUUM ANALYZE crm_churn_history, crm_retention_actions, crm_user_profiles, crm_user_activities"
            )
        print(
            f"history: {history} weekly scores, {actions} retention actions, lifecycle refresh: "
            f"{time.perf_counter() - started:.1f} s"
        )
    users = CrmUserProfile.objects.count()
    admin = get_user_model().objects.filter(username="bench_admin").first()
    if admin is None:
        admin = get_user_model().objects.create_superuser("bench_admin", "", "bench-password-0123456789")
    client = Client()
    client.force_login(admin)
    _, key = ServiceApiKey.objects.create_key(name="bench")
    high = CrmUserProfile.objects.filter(churn_band="high").order_by("-churn_risk").first()
    changelist = reverse("admin:profiles_crmuserprofile_changelist")

    def outcomes_forgotten():
        caches["database"].delete(OUTCOMES_CACHE_KEY)

    pages = [
        ("churn dashboard", reverse("admin:crm_churn_dashboard"), {}),
        ("churn dashboard, outcome report recomputed", reverse("admin:crm_churn_dashboard"), {},
         outcomes_forgotten),
        ("user 360 (high risk)", reverse("admin:profiles_crmuserprofile_change", args=[high.pk]), {}),
        ("user list: high band, inactive 14+", f"{changelist}?churn_band=high&inactive_days=14", {}),
        ("CSV export: high band", reverse("admin:profiles_crmuserprofile_export") + "?churn_band=high", {}),
        ("GET /api/crm/users?band=high&limit=100", "/api/crm/users?band=high&limit=100",
         {"HTTP_AUTHORIZATION": f"Api-Key {key}"}),
    ]  # fmt: skip
    pages = [page if len(page) == 4 else (*page, lambda: None) for page in pages]
    print(f"\n{users} users, {runs} runs per page (in-process test client, superuser session)\n")
    print(f"{'page':<42} {'median ms':>9} {'p95 ms':>8} {'max ms':>8} {'queries':>8} {'KB':>6}")
    for name, url, headers, before in pages:
        for _ in range(2):  # warm up: templates, content types, permissions
            response = client.get(url, **headers)
            b"".join(response.streaming_content) if response.streaming else response.content
        times = []
        for _ in range(runs):
            before()
            started = time.perf_counter()
            response = client.get(url, **headers)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        before()
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, **headers)
            b"".join(response.streaming_content) if response.streaming else response.content
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(
            f"{name:<42} {statistics.median(times):>9.1f} {p95:>8.1f} {times[-1]:>8.1f} "
            f"{len(queries):>8} {len(body) / 1024:>6.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the bench database (reused by --measure-only)")
    parser.add_argument("--measure-only", action="store_true", help="reuse a database kept with --keep")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _measure(args.runs)
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")
    from yahealthy_crm.bootstrap import local_environment_prepare

    local_environment_prepare()  # the secret (and, without DATABASE_URL, the embedded server)
    server = configured_server_url()
    url = with_database(server, BENCH_DB)
    try:
        if not args.measure_only:
            database_recreate(server, BENCH_DB)
            _prepare(url, args.users)
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run([sys.executable, __file__, "--child", "--runs", str(args.runs)], cwd=ROOT, env=env, check=True)
    finally:
        if not args.keep:
            database_recreate(server, BENCH_DB, drop_only=True)


if __name__ == "__main__":
    main()
