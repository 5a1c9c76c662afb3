"""Celery tasks of the coaching app (thin: they call services).

The jobs run inside `coaching.jobs.job_run` (a JobRun row per run, one run per job at a time): from
beat the task starts the run itself; from `POST /api/crm/jobs/<job>` the API starts it (to answer
with its id, or 409 when one is running) and the task executes it (`run_id`).
"""

from celery import shared_task

from coaching.alerts import dead_letter_alerts_raise
from coaching.daily_insights import daily_insights_generate
from coaching.jobs import (
    JOB_DAILY_ENGAGEMENT,
    JOB_DAILY_INSIGHTS,
    JOB_RETENTION_OUTCOMES,
    JOB_WEEKLY_CHURN,
    JobAlreadyRunningError,
    JobCounts,
    JobTrigger,
    job_run,
    job_run_resume,
)
from coaching.lifecycle import engagement_daily_refresh
from coaching.retention_actions import retention_outcomes_update, weekly_churn_run
from coaching.services import coaching_session_embedding_refresh


def _run(job: str, fn, run_id: int | None) -> dict:
    try:
        run = job_run_resume(run_id=run_id, fn=fn) if run_id else job_run(job=job, trigger=JobTrigger.BEAT, fn=fn)
    except JobAlreadyRunningError as exc:
        return {"job": job, "status": "already_running", "runId": exc.run.pk if exc.run else None}
    if run is None:
        return {"job": job, "status": "not_running", "runId": run_id}
    return {"job": job, "status": run.status, "runId": run.pk, "processed": run.processed, "failed": run.failed}


@shared_task(name="coaching.tasks.daily_insights_job", acks_late=True)
def daily_insights_job(run_id: int | None = None) -> dict:
    return _run(JOB_DAILY_INSIGHTS, lambda counts: daily_insights_generate(counts=counts), run_id)


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
def weekly_churn_assessment_job(run_id: int | None = None) -> dict:
    return _run(JOB_WEEKLY_CHURN, lambda counts: weekly_churn_run(counts=counts), run_id)


@shared_task(name="coaching.tasks.retention_outcomes_job", acks_late=True)
def retention_outcomes_job(run_id: int | None = None) -> dict:
    def outcomes(counts: JobCounts) -> None:
        counts.processed = counts.considered = retention_outcomes_update()

    return _run(JOB_RETENTION_OUTCOMES, outcomes, run_id)


@shared_task(name="coaching.tasks.dead_letter_alerts_job", acks_late=True)
def dead_letter_alerts_job() -> dict:
    """Every 15 minutes (not recorded as a JobRun: it is a cheap sweep, once per dead letter by its key)."""
    return {"raised": dead_letter_alerts_raise()}


def _engagement(counts: JobCounts) -> None:
    result = engagement_daily_refresh()
    counts.considered, counts.processed = result.get("considered", 0), result.get("processed", 0)
    counts.details = {k: v for k, v in result.items() if k not in ("considered", "processed")}


@shared_task(name="coaching.tasks.daily_engagement_job", acks_late=True)
def daily_engagement_job(run_id: int | None = None) -> dict:
    """Daily 05:30: tiers, lifecycle stages, goal progress and streaks (coaching/lifecycle.py)."""
    return _run(JOB_DAILY_ENGAGEMENT, _engagement, run_id)
