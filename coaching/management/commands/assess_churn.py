"""Run the weekly churn job now, synchronously (docs/retention.md "Jobs").

    python manage.py assess_churn [--dry-run] [--user USER_ID ...]

Refreshes the churn scores, proposes one retention action per at-risk user and raises the staff
alerts for users who crossed into the high band (not in a dry run).
"""

from coaching.jobs import JOB_WEEKLY_CHURN
from coaching.management.job_command import JobCommand
from coaching.retention_actions import weekly_churn_run


class Command(JobCommand):
    help = "Weekly churn: refresh scores, one retention action per at-risk user, staff alerts."
    job = JOB_WEEKLY_CHURN

    def run_service(self, *, counts, user_ids, progress, dry_run):
        weekly_churn_run(counts=counts, user_ids=user_ids, progress=progress, send_alerts=not dry_run)
