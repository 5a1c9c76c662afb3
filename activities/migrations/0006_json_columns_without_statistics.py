from django.db import migrations

from yahealthy_crm.migration_operations import column_statistics_off


class Migration(migrations.Migration):
    dependencies = [("activities", "0005_embeddings_256_wordllama")]

    operations = [column_statistics_off("crm_user_activities", ["payload"])]
