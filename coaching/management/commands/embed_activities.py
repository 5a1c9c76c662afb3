"""Backfill embeddings of activities and coaching sessions that have none (progress bar, batches),
of users with AI consent only (coaching/privacy.py).

    python manage.py embed_activities [--batch-size 256] [--user USER_ID] [--no-sessions] [--reembed]

First it checks which embedder wrote the stored vectors: when EMBEDDING_PROVIDER (or the OpenAI
key, or the model) changed since, every stored vector is cleared and everything is embedded again
with the configured embedder (`--reembed` forces that): vectors of two embedders are never mixed.

Safe to run while the app is live and safe to re-run: only rows without an embedding are touched,
and an activity updated while its batch was embedded keeps the newer state (the row is skipped and
its own after-commit task embeds it).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from activities.embeddings import embedding_provider
from activities.selectors import activity_text
from activities.services import activities_missing_embedding, embeddings_backfill
from coaching.privacy import coaching_sessions_missing_embedding
from coaching.selectors import coaching_session_text
from coaching.services import embeddings_space_sync


class Command(BaseCommand):
    help = "Compute missing embeddings of activities and coaching sessions."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=256)
        parser.add_argument("--user", default="", help="Only this user's rows.")
        parser.add_argument("--no-sessions", action="store_true", help="Activities only.")
        parser.add_argument(
            "--reembed", action="store_true", help="Clear every stored vector and embed everything again."
        )

    def handle(self, *args, batch_size: int, user: str, no_sessions: bool, reembed: bool = False, **options):
        change = embeddings_space_sync(force=reembed)
        if change is not None:
            self.stdout.write(
                f"embedder {change.previous or 'unrecorded'} -> {change.current}: cleared "
                f"{change.activities_cleared} activity and {change.sessions_cleared} coaching-session vectors "
                "to embed them again"
            )
        activities = activities_missing_embedding()
        sessions = coaching_sessions_missing_embedding()
        if user:
            activities, sessions = activities.filter(user_id=user), sessions.filter(user_id=user)
        done_activities = self._backfill(activities, batch_size, "activities", activity_text, check_updated=True)
        done_sessions = 0
        if not no_sessions:
            done_sessions = self._backfill(sessions, batch_size, "sessions", coaching_session_text)
        self.stdout.write(
            f"embedded {done_activities} activities and {done_sessions} coaching sessions "
            f"({embedding_provider()} embedder)"
        )

    def _backfill(self, queryset, batch_size: int, label: str, to_text, *, check_updated: bool = False) -> int:
        with tqdm(total=queryset.count(), desc=label, unit="row", disable=None) as bar:
            return embeddings_backfill(
                queryset, to_text, batch_size=batch_size, check_updated=check_updated, on_batch=bar.update
            )
