from django.db import migrations

from yahealthy_crm.migration_operations import column_statistics_off


class Migration(migrations.Migration):
    dependencies = [("sync", "0002_app_deletes_index")]

    operations = [column_statistics_off("crm_sync_events", ["payload", "response_body", "conflicts"])]
