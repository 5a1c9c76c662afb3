"""Celery tasks of the coaching app (thin: they call services)."""

from celery import shared_task

from coaching.retention import churn_retention_run
from coaching.services import coaching_session_embedding_refresh, daily_insights_generate


@shared_task(name="coaching.tasks.daily_insights_job", acks_late=True)
def daily_insights_job() -> dict:
    return daily_insights_generate()


@shared_task(
    name="coaching.tasks.coaching_session_embed_task",
    autoretry_for=(ConnectionError, TimeoutError),
    retry_backoff=2,
    max_retries=5,
    soft_time_limit=60,
    time_limit=90,
)
def coaching_session_embed_task(session_id: int) -> bool:
    return coaching_session_embedding_refresh(session_id=session_id)


@shared_task(name="coaching.tasks.weekly_churn_assessment_job", acks_late=True)
def weekly_churn_assessment_job() -> dict:
    return churn_retention_run()
