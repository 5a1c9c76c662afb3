"""Celery tasks of the activities app (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from activities.services import activities_embed_pending


@shared_task(
    name="activities.tasks.activities_embed_pending_task",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=2,
    max_retries=5,
    soft_time_limit=300,
    time_limit=360,
)
def activities_embed_pending_task() -> int:
    """Embed the activities that have no embedding yet (scheduled after app events, and periodically)."""
    return activities_embed_pending()
