"""The status indexes hold only the rows someone looks up by status.

Nearly every row is an applied inbound event (`success`); nobody lists those by status, yet each
entered two indexes. `crm_sync_status_idx` now holds the rows that are not `success` or `delivered`
(failed, stale, processing, the outbound queue and its dead letters); the outbound queue's index
(status, next_attempt_at) holds outbound rows only. Built CONCURRENTLY: webhooks keep writing meanwhile.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("sync", "0004_idempotency_key_without_like_index")]

    operations = [
        AddIndexConcurrently(
            model_name="syncevent",
            index=models.Index(
                condition=models.Q(direction="outbound"),
                fields=["status", "next_attempt_at"],
                name="crm_sync_outbound_status_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="syncevent", name="crm_sync_dir_status_idx"),
        RemoveIndexConcurrently(model_name="syncevent", name="crm_sync_status_idx"),
        AddIndexConcurrently(
            model_name="syncevent",
            index=models.Index(
                condition=~models.Q(status="success") & ~models.Q(status="delivered"),
                fields=["status"],
                name="crm_sync_status_idx",
            ),
        ),
    ]
