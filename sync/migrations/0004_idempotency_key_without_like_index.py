from django.db import migrations, models

from yahealthy_crm.migration_operations import unique_field_as_constraint


class Migration(migrations.Migration):
    dependencies = [("sync", "0003_json_columns_without_statistics")]

    # The key stays unique under the same constraint; only the LIKE index that `unique=True` added goes.
    operations = [
        unique_field_as_constraint(
            model_name="syncevent",
            name="idempotency_key",
            field=models.CharField(max_length=255),
            table="crm_sync_events",
            like_index="crm_sync_events_idempotency_key_94e9cfb6_like",
        )
    ]
