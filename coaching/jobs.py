"""Job runs: every run of a background job is a `JobRun` row, and one job runs at most once at a time.

`job_run(job=..., trigger=..., fn=...)` inserts the run (status `running`); the partial unique
constraint `crm_job_one_running` makes a second concurrent start fail, which becomes
`JobAlreadyRunningError` (the API answers 409 with the running run's id). `fn(counts)` does the work
and fills the counts; the run is then closed as `succeeded`, or `failed` with the error (re-raised).
A run left `running` by a killed process longer than `JOB_RUN_STALE_AFTER` is closed as failed by
the next start, so a crash never blocks a job for good.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from coaching.models import JobRun, JobRunStatus

logger = logging.getLogger(__name__)

# The jobs (their names are the slugs of POST /api/crm/jobs/<job>).
JOB_DAILY_INSIGHTS = "daily-insights"
JOB_WEEKLY_CHURN = "assess-churn"
JOB_DAILY_ENGAGEMENT = "daily-engagement"
JOB_RETENTION_OUTCOMES = "retention-outcomes"


class JobTrigger:
    BEAT = "beat"
    API = "api"
    COMMAND = "command"


# Longer than any real run (Celery kills a task after CELERY_TASK_TIME_LIMIT, 10 minutes by default).
JOB_RUN_STALE_AFTER = dt.timedelta(hours=2)
MAX_FAILURES_KEPT = 50  # per run, in details["failures"]


class JobAlreadyRunningError(Exception):
    def __init__(self, run: JobRun | None) -> None:
        super().__init__(f"job already running (run {run.pk if run else '?'})")
        self.run = run


@contextmanager
def savepoint_if_in_transaction() -> Iterator[None]:
    """A savepoint inside an outer transaction (a dry run, a test) so one user's database error does not
    break the rest; nothing otherwise (no transaction held open while a model answers)."""
    with transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext():
        yield


@dataclass
class JobCounts:
    """What a job did, filled by the job's service and stored on its JobRun."""

    considered: int = 0
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    details: dict = field(default_factory=dict)

    def failure(self, user_id: str, error: BaseException | str) -> None:
        self.failed += 1
        failures = self.details.setdefault("failures", [])
        if len(failures) < MAX_FAILURES_KEPT:
            failures.append({"userId": user_id, "error": str(error)[:500]})

    def user_step(self, user_id: str, work: Callable[[], object], *, skipped: str, describe) -> str:
        """One user's share of a job, inside a savepoint when a transaction is open: a failure is
        recorded and the job goes on; `work` returning None is a skip. Returns what happened."""
        try:
            with savepoint_if_in_transaction():
                result = work()
        except Exception as exc:  # one user's failure is recorded and the job goes on
            logger.exception("job step failed for %s", user_id)
            self.failure(user_id, exc)
            return f"failed: {exc}"
        if result is None:
            self.skipped += 1
            return f"skipped: {skipped}"
        self.processed += 1
        return describe(result)

    def as_dict(self) -> dict:
        return {
            "considered": self.considered,
            "processed": self.processed,
            "skipped": self.skipped,
            "failed": self.failed,
            **({"details": self.details} if self.details else {}),
        }


def job_run_start(*, job: str, trigger: str, now: dt.datetime | None = None) -> JobRun:
    """Insert the run (status running). Raises JobAlreadyRunningError when one is running."""
    now = now or timezone.now()
    JobRun.objects.filter(job=job, status=JobRunStatus.RUNNING, started_at__lt=now - JOB_RUN_STALE_AFTER).update(
        status=JobRunStatus.FAILED, finished_at=now, error="abandoned: still running after the stale limit"
    )
    try:
        with transaction.atomic():
            return JobRun.objects.create(job=job, trigger=trigger, status=JobRunStatus.RUNNING, started_at=now)
    except IntegrityError as exc:
        running = JobRun.objects.filter(job=job, status=JobRunStatus.RUNNING).first()
        raise JobAlreadyRunningError(running) from exc


def job_run_execute(run: JobRun, fn: Callable[[JobCounts], object]) -> JobRun:
    """Run `fn` for a started run and close it (succeeded, or failed with the error, re-raised)."""
    counts = JobCounts()
    try:
        fn(counts)
    except BaseException as exc:
        _finish(run, counts, status=JobRunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        logger.exception("job %s run %s failed", run.job, run.pk)
        raise
    return _finish(run, counts, status=JobRunStatus.SUCCEEDED)


def job_run(*, job: str, trigger: str, fn: Callable[[JobCounts], object]) -> JobRun:
    """Start, run and record one run of `job`; JobAlreadyRunningError when one is running."""
    return job_run_execute(job_run_start(job=job, trigger=trigger), fn)


def job_run_resume(*, run_id: int, fn: Callable[[JobCounts], object]) -> JobRun | None:
    """Execute a run started elsewhere (the API starts it to answer with its id, the worker runs it).

    None when the run is unknown or no longer running (a redelivered task message: nothing to redo).
    """
    run = JobRun.objects.filter(pk=run_id, status=JobRunStatus.RUNNING).first()
    if run is None:
        return None
    return job_run_execute(run, fn)


def job_run_abandon(*, run: JobRun, error: str) -> JobRun:
    """Close a started run that will never execute (e.g. the broker refused the task)."""
    return _finish(run, JobCounts(), status=JobRunStatus.FAILED, error=error)


def _finish(run: JobRun, counts: JobCounts, *, status: str, error: str = "") -> JobRun:
    run.status = status
    run.finished_at = timezone.now()
    run.considered, run.processed, run.skipped, run.failed = (
        counts.considered,
        counts.processed,
        counts.skipped,
        counts.failed,
    )
    run.details = counts.details
    run.error = error
    run.save(
        update_fields=["status", "finished_at", "considered", "processed", "skipped", "failed", "details", "error"]
    )
    return run
