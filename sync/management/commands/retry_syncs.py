"""manage.py retry_syncs: send dead-lettered (and, on request, skipped or stuck) outbound events again."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from sync.delivery import outbound_events_requeue_stuck, outbound_events_retry
from sync.models import SyncStatus


class Command(BaseCommand):
    help = "Retry outbound sync events: dead letters by default; --skipped and --stuck add more."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Only these sync event ids.")
        parser.add_argument(
            "--skipped", action="store_true", help="Also events skipped while APP_WEBHOOK_URL was unset."
        )
        parser.add_argument(
            "--stuck", action="store_true", help="Re-enqueue pending/retrying events overdue by 5 minutes."
        )

    def handle(self, *args, ids, skipped, stuck, **options):
        statuses = [SyncStatus.DEAD_LETTER] + ([SyncStatus.SKIPPED] if skipped else [])
        retried = outbound_events_retry(event_ids=ids or None, statuses=statuses, actor_id="manage.py retry_syncs")
        self.stdout.write(f"Queued {retried} outbound event(s) for delivery.")
        if stuck:
            self.stdout.write(f"Re-enqueued {outbound_events_requeue_stuck()} overdue event(s).")
