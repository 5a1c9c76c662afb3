"""Embedding speed for the activity backfill: WordLlama (the offline default) against hashing.

    .venv/bin/python bench/embedding_speed.py [--rows 10000] [--target 100000] [--batch-size 256]
                                              [--embedders hashing,wordllama] [--no-db] [--keep]

Two measurements per embedder, in the same run:

1. embedder only: `embed_texts_with()` on the texts of `--rows` generated activities, in batches of
   `--batch-size` (what one backfill batch asks for): texts per second of the model alone;
2. backfill: `activities.services.embeddings_backfill()` (what `manage.py embed_activities` and the
   sweep run) on `--rows` activities in a throw-away database `yahealthy_embedbench` on the
   configured PostgreSQL (DATABASE_URL, else the embedded server under var/pgdata): read a batch,
   build its texts, embed, one UPDATE per batch (HNSW index maintenance included). The vectors are
   cleared between embedders. The database is dropped at the end unless --keep.

The time for `--target` activities is extrapolated linearly from `--rows` (the backfill walks the
table in id order in fixed batches, so its cost per row does not grow with the table; the HNSW
inserts grow with log n, so the extrapolation is slightly optimistic). Use --rows 100000 to measure
the full size instead.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import database_recreate, with_database  # noqa: E402
from bench.support import server_url as configured_server_url  # noqa: E402

BENCH_DB = "yahealthy_embedbench"
USERS = 200
FOODS = (
    "Chicken caesar salad", "Oatmeal with blueberries", "Salmon with roasted potatoes", "Greek yogurt with honey",
    "Beef burrito", "Margherita pizza", "Spaghetti bolognese", "Scrambled eggs on toast", "Tuna sandwich",
    "Lentil soup", "Vegetable stir fry with tofu", "Banana smoothie", "Apple with peanut butter", "Sushi rolls",
    "Quinoa bowl with chickpeas", "Turkey wrap", "Pancakes with maple syrup", "Chicken curry with rice",
    "Cottage cheese with pineapple", "Grilled steak with broccoli", "Hummus with carrot sticks", "Fish tacos",
)  # fmt: skip
MEALS = ("breakfast", "lunch", "dinner", "snack")
EXERCISES = ("running", "cycling", "swimming", "yoga", "strength training", "walking", "tennis", "rowing machine")


def activity_rows(count: int, seed: int = 7) -> list[dict]:
    """Varied activities shaped like the app's: mostly food logs, then exercise, water, sleep, weight."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        kind = rng.random()
        if kind < 0.6:
            row = {
                "activity_type": "food_log",
                "payload": {"food_name": rng.choice(FOODS), "meal_type": rng.choice(MEALS)},
                "calories_kcal": rng.randint(100, 1100),
                "protein_g": rng.randint(2, 60),
            }
        elif kind < 0.8:
            minutes = rng.randint(10, 120)
            row = {
                "activity_type": "exercise",
                "payload": {"exercise_type": rng.choice(EXERCISES), "description": f"{minutes} minute session"},
                "exercise_minutes": minutes,
                "calories_burned_kcal": minutes * rng.randint(5, 11),
            }
        elif kind < 0.9:
            row = {"activity_type": "water_log", "payload": {}, "water_ml": rng.choice((250, 330, 500, 750))}
        elif kind < 0.97:
            row = {"activity_type": "sleep_log", "payload": {"quality": rng.choice(("good", "poor"))}, "sleep_hours": 7}
        else:
            row = {"activity_type": "weight_log", "payload": {"notes": "morning weigh-in"}, "weight_kg": 80}
        row["user_id"] = f"bench_{n % USERS}"
        rows.append(row)
    return rows


def embedder_only(provider: str, texts: list[str], batch_size: int) -> float:
    from activities.embeddings import embed_texts_with

    embed_texts_with(provider, texts[:8])  # load the model outside the clock (once per process)
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        embed_texts_with(provider, texts[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def load(rows: list[dict]) -> None:
    from django.utils import timezone

    from activities.models import UserActivity
    from profiles.models import CrmUserProfile

    now = timezone.now()
    CrmUserProfile.objects.bulk_create(
        CrmUserProfile(user_id=f"bench_{n}", consent_ai_processing=True) for n in range(USERS)
    )
    UserActivity.objects.bulk_create(
        (
            UserActivity(occurred_at=now, logged_date=timezone.localdate(now), external_id=f"e{n}", **row)
            for n, row in enumerate(rows)
        ),
        batch_size=2000,
    )


def backfill(provider: str, batch_size: int) -> tuple[float, int]:
    from django.db import connection
    from django.test import override_settings

    from activities.models import UserActivity
    from activities.selectors import activity_text
    from activities.services import activities_missing_embedding, embeddings_backfill

    UserActivity.objects.update(embedding=None)
    with connection.cursor() as cursor:  # autocommit: VACUUM may run (the previous embedder's dead rows)
        cursor.execute("VACUUM ANALYZE crm_user_activities")
    with override_settings(EMBEDDING_PROVIDER=provider):
        started = time.perf_counter()
        stored = embeddings_backfill(
            activities_missing_embedding(), activity_text, batch_size=batch_size, check_updated=True
        )
        return stored / (time.perf_counter() - started), stored


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--target", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--embedders", default="hashing,wordllama")
    parser.add_argument("--no-db", action="store_true", help="embedder-only numbers (no database)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    embedders = [name.strip() for name in args.embedders.split(",") if name.strip()]

    server = None if args.no_db else configured_server_url()
    if server:
        database_recreate(server, BENCH_DB)
        os.environ["DATABASE_URL"] = with_database(server, BENCH_DB)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")
    os.environ["CELERY_QUEUE_DIR"] = tempfile.mkdtemp(prefix="embedbench-queue-")
    os.environ["OPENAI_API_KEY"] = os.environ.get("OPENAI_API_KEY", "")
    import django

    from yahealthy_crm.bootstrap import local_environment_prepare

    local_environment_prepare()
    django.setup()
    from activities.models import UserActivity
    from activities.selectors import activity_text

    rows = activity_rows(args.rows)
    texts = [activity_text(UserActivity(logged_date=dt_today(), **row)) for row in rows]
    print(f"{args.rows:,} activities, batches of {args.batch_size}, {os.cpu_count()} CPU cores", flush=True)
    results = {}
    try:
        if server:
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            load(rows)
        for provider in embedders:
            only = embedder_only(provider, texts, args.batch_size)
            through, stored = backfill(provider, args.batch_size) if server else (None, 0)
            if server and stored != args.rows:
                raise SystemExit(f"{provider}: stored {stored} of {args.rows} rows")
            results[provider] = (only, through)
            print(f"  {provider}: measured", flush=True)
    finally:
        if server:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                database_recreate(server, BENCH_DB, drop_only=True)
    report(results, args)


def dt_today():
    from django.utils import timezone

    return timezone.localdate()


def report(results: dict, args) -> None:
    scale = f"{args.target:,} (extrapolated from {args.rows:,})" if args.target != args.rows else f"{args.rows:,}"
    print()
    print(f"| embedder | embedder only, texts/s | backfill, rows/s | backfill of {scale} |")
    print("| --- | ---: | ---: | ---: |")
    for provider, (only, through) in results.items():
        rate = through or only
        minutes = args.target / rate / 60
        through_text = f"{through:,.0f}" if through else "n/a (--no-db)"
        print(f"| {provider} | {only:,.0f} | {through_text} | {minutes:.1f} min |")


if __name__ == "__main__":
    main()
