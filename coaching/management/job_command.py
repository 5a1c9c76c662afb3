"""The base of the job commands (`run_daily_insights`, `assess_churn`): the same services as the
Celery jobs, recorded as a JobRun (trigger `command`), with a progress bar, `--dry-run` and `--user`.

`--dry-run` computes everything in one transaction that is rolled back at the end (nothing is
written, no e-mail is sent, nothing is synced out) and prints what each user would get.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from coaching.jobs import JobAlreadyRunningError, JobCounts, JobTrigger, job_run


class _RollBack(Exception):
    pass


class JobCommand(BaseCommand):
    job = ""

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Compute and print; write nothing.")
        parser.add_argument(
            "--user", action="append", default=None, metavar="USER_ID", help="Only this user (repeatable)."
        )

    def run_service(self, *, counts: JobCounts, user_ids: list[str] | None, progress, dry_run: bool) -> None:
        raise NotImplementedError

    def handle(self, *args, dry_run: bool, user: list[str] | None, verbosity: int = 1, **options):
        bar = tqdm(desc=self.job, unit="user", disable=None)

        def work(counts: JobCounts) -> None:
            def progress(user_id: str, outcome: str) -> None:
                if bar.total is None:
                    bar.total = counts.considered
                bar.update(1)
                if dry_run or verbosity > 1:
                    bar.write(f"{user_id}: {outcome}")

            self.run_service(counts=counts, user_ids=user, progress=progress, dry_run=dry_run)
            if user:
                counts.details["userIds"] = user

        try:
            if dry_run:
                with transaction.atomic():
                    run = job_run(job=self.job, trigger=JobTrigger.COMMAND, fn=work)
                    raise _RollBack
            run = job_run(job=self.job, trigger=JobTrigger.COMMAND, fn=work)
        except _RollBack:
            pass
        except JobAlreadyRunningError as exc:
            raise CommandError(f"{self.job} is already running (run {exc.run.pk if exc.run else '?'})") from exc
        finally:
            bar.close()
        prefix = "dry run, nothing written: " if dry_run else f"run {run.pk}: "
        self.stdout.write(
            f"{prefix}considered {run.considered}, processed {run.processed}, skipped {run.skipped}, "
            f"failed {run.failed}" + (f" {run.details}" if run.details else "")
        )
