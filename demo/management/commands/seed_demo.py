import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from tqdm import tqdm

from demo.data import demo_seed_record, demo_users_create, missing_demo_numbers

CHUNK = 500


def _create_chunk(numbers: list[int], days: int, seed: int) -> dict:
    return demo_users_create(numbers=numbers, days=days, seed=seed)


class Command(BaseCommand):
    help = "Create realistic demo users (demo_000001...) with 60+ days of logs. Safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=200, help="How many demo users should exist (default 200).")
        parser.add_argument("--days", type=int, default=60, help="Days of history per user (60..365, default 60).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed: same seed, same data.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, users: int, days: int, seed: int, no_progress: bool, **options):
        if not 1 <= users <= 1_000_000:
            raise CommandError("--users must be between 1 and 1000000.")
        if not 60 <= days <= 365:
            raise CommandError("--days must be between 60 and 365.")
        numbers = missing_demo_numbers(users)
        if not numbers:
            self.stdout.write(f"Demo data already present: {users} demo users exist, nothing to do.")
            return
        chunks = [numbers[start : start + CHUNK] for start in range(0, len(numbers), CHUNK)]
        totals = {"users": 0, "activities": 0, "goals": 0, "insights": 0}
        # Each chunk is one transaction (an interrupted run leaves whole users only); chunks run in
        # parallel processes because PostgreSQL index maintenance, not Python, is the bottleneck.
        workers = min(len(chunks), os.cpu_count() or 1, 4)
        connections.close_all()
        with (
            tqdm(total=len(numbers), unit="user", desc="seed_demo", disable=no_progress) as progress,
            ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool,
        ):
            futures = {pool.submit(_create_chunk, chunk, days, seed): len(chunk) for chunk in chunks}
            for future in as_completed(futures):
                for key, value in future.result().items():
                    totals[key] += value
                progress.update(futures[future])
        demo_seed_record(totals)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {totals['users']} demo users, {totals['activities']} activities, "
                f"{totals['goals']} goals, {totals['insights']} insights."
            )
        )
