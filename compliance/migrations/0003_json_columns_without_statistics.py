from django.db import migrations

from yahealthy_crm.migration_operations import column_statistics_off


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_erasure_tombstone")]

    operations = [column_statistics_off("crm_audit_log", ["changes"])]
