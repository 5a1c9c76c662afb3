"""Every app event moves its user's last_active_at: make that UPDATE a HOT update.

PostgreSQL updates a row in place on its page, without new entries in the table's indexes, when no
indexed column changes and the page has room. So: no index on last_active_at, and pages filled to
90 % by inserts (fillfactor; existing pages get room as updates free it), leaving room for the
new row versions. Measured (docs/sync.md "Benchmark"): no HOT updates before, nearly all after.
"""

from django.db import migrations, models

TABLE = "crm_user_profiles"


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0005_crm_viewer_group"),
    ]

    operations = [
        migrations.AlterField(
            model_name="crmuserprofile",
            name="last_active_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            f"ALTER TABLE {TABLE} SET (fillfactor = 90)",
            reverse_sql=f"ALTER TABLE {TABLE} RESET (fillfactor)",
        ),
    ]
