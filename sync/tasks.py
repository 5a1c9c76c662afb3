"""Celery tasks of the sync app (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from sync.delivery import outbound_event_deliver, outbound_events_requeue_stuck


@shared_task(
    bind=True,
    name="sync.tasks.sync_event_deliver_task",
    # Acknowledged only after the attempt is recorded: a worker crash re-runs it (same webhook-id).
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # the retry budget is counted on the SyncEvent row (attempts)
    soft_time_limit=60,
    time_limit=90,
)
def sync_event_deliver_task(self, event_id: int) -> str:
    outcome = outbound_event_deliver(event_id=event_id)
    if outcome.retry_in_s is not None:
        raise self.retry(countdown=outcome.retry_in_s)
    return outcome.status


@shared_task(name="sync.tasks.sync_outbound_requeue_stuck_task", acks_late=True)
def sync_outbound_requeue_stuck_task() -> int:
    return outbound_events_requeue_stuck()
