"""Celery tasks of the activities app (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from activities.services import activity_embedding_refresh


@shared_task(
    name="activities.tasks.activity_embed_task",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=2,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def activity_embed_task(activity_id: int) -> bool:
    return activity_embedding_refresh(activity_id=activity_id)
