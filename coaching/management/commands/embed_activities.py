"""Backfill embeddings of activities and coaching sessions that have none (progress bar, batches).

    python manage.py embed_activities [--batch-size 256] [--user USER_ID] [--no-sessions]

Safe to run while the app is live and safe to re-run: only rows without an embedding are touched,
and an activity updated while its batch was embedded keeps the newer state (the row is skipped and
its own after-commit task embeds it).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import connection
from tqdm import tqdm

from activities.embeddings import embed_texts, embedding_provider
from activities.models import UserActivity
from activities.selectors import vector_literal
from activities.services import NOT_EMBEDDED_TYPES, activity_text
from coaching.models import CoachingSession
from coaching.selectors import coaching_session_text


class Command(BaseCommand):
    help = "Compute missing embeddings of activities and coaching sessions."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=256)
        parser.add_argument("--user", default="", help="Only this user's rows.")
        parser.add_argument("--no-sessions", action="store_true", help="Activities only.")

    def handle(self, *args, batch_size: int, user: str, no_sessions: bool, **options):
        activities = UserActivity.objects.filter(embedding__isnull=True).exclude(
            activity_type__in=list(NOT_EMBEDDED_TYPES)
        )
        sessions = CoachingSession.objects.filter(embedding__isnull=True)
        if user:
            activities, sessions = activities.filter(user_id=user), sessions.filter(user_id=user)
        done_activities = self._backfill(
            activities.defer("embedding"), batch_size, "activities", activity_text, check_updated=True
        )
        done_sessions = 0
        if not no_sessions:
            done_sessions = self._backfill(sessions.defer("embedding"), batch_size, "sessions", coaching_session_text)
        self.stdout.write(
            f"embedded {done_activities} activities and {done_sessions} coaching sessions "
            f"({embedding_provider()} embedder)"
        )

    def _backfill(self, queryset, batch_size: int, label: str, to_text, *, check_updated: bool = False) -> int:
        done, last_id = 0, 0
        with tqdm(total=queryset.count(), desc=label, unit="row", disable=None) as bar:
            while True:
                batch = list(queryset.filter(pk__gt=last_id).order_by("pk")[:batch_size])
                if not batch:
                    return done
                last_id = batch[-1].pk
                vectors = embed_texts([to_text(row) for row in batch])
                done += _store_batch(queryset.model, batch, vectors, check_updated=check_updated)
                bar.update(len(batch))


def _store_batch(model, batch, vectors, *, check_updated: bool) -> int:
    """One UPDATE for the whole batch; rows embedded or changed meanwhile are left alone."""
    table = model._meta.db_table
    unchanged = " AND t.updated_at = v.updated_at" if check_updated else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS t SET embedding = v.embedding::vector
            FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v(id, embedding, updated_at)
            WHERE t.id = v.id AND t.embedding IS NULL{unchanged}
            """,  # noqa: S608 - table and clause are constants
            [
                [row.pk for row in batch],
                [vector_literal(vector) for vector in vectors],
                [getattr(row, "updated_at", None) or row.created_at for row in batch],
            ],
        )
        return cursor.rowcount
