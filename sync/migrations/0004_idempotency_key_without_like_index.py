from django.db import migrations, models

from yahealthy_crm.migration_operations import like_index_drop

# The key stays unique under the same constraint; only the LIKE index that `unique=True` added goes.
LIKE_INDEX = "crm_sync_events_idempotency_key_94e9cfb6_like"


class Migration(migrations.Migration):
    dependencies = [("sync", "0003_json_columns_without_statistics")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="syncevent", name="idempotency_key", field=models.CharField(max_length=255)
                ),
                migrations.AddConstraint(
                    model_name="syncevent",
                    constraint=models.UniqueConstraint(
                        fields=["idempotency_key"], name="crm_sync_events_idempotency_key_key"
                    ),
                ),
            ],
            database_operations=[like_index_drop("crm_sync_events", "idempotency_key", LIKE_INDEX)],
        )
    ]
