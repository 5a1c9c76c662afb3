"""Run the daily insights job now, synchronously (docs/retention.md "Jobs").

python manage.py run_daily_insights [--dry-run] [--user USER_ID ...]
"""

from coaching.daily_insights import daily_insights_generate
from coaching.jobs import JOB_DAILY_INSIGHTS
from coaching.management.job_command import JobCommand


class Command(JobCommand):
    help = "Daily insights: one coach-written insight + recommendation per engaged user (once a day)."
    job = JOB_DAILY_INSIGHTS

    def run_service(self, *, counts, user_ids, progress, dry_run):
        daily_insights_generate(counts=counts, user_ids=user_ids, progress=progress)
