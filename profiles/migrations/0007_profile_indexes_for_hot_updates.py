"""Fewer index entries per profile row version, and more room for HOT updates.

- `user_id` and `engagement_tier` keep their unique constraint and index (`engagement_tier`'s
  renamed `crm_profile_tier_idx`); only the varchar_pattern_ops indexes that `unique=True` and
  `db_index=True` added go: nothing runs LIKE 'prefix%' on them (the admin's search is a
  case-insensitive "contains"), yet every non-HOT update and every insert entered both.
- fillfactor 90 -> 70: every app event moves last_active_at, and a batch updates many profiles in one
  transaction. A row's new version stays on its page (a HOT update: no new index entries) only when
  the page has room for it; a page of about 22 rows now holds the new versions of about 9 of them
  within one transaction, where it held 2 (docs/sync.md "Benchmark"). Pages written before this
  migration get the room as updates move rows off them.
"""

from django.db import migrations, models

from yahealthy_crm.migration_operations import like_index_drop, unique_field_as_constraint

TABLE = "crm_user_profiles"
TIER_INDEX_BEFORE = "crm_user_profiles_engagement_tier_351adb71"


class Migration(migrations.Migration):
    dependencies = [("profiles", "0006_last_active_hot_updates")]

    operations = [
        unique_field_as_constraint(
            model_name="crmuserprofile",
            name="user_id",
            field=models.CharField(help_text="The YAHealthy app's user id.", max_length=64),
            table=TABLE,
            like_index="crm_user_profiles_user_id_7a38dc0a_like",
        ),
        # db_index=True as a named index (the same one, renamed), without its LIKE index.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="crmuserprofile",
                    name="engagement_tier",
                    field=models.CharField(
                        choices=[("bronze", "Bronze"), ("silver", "Silver"), ("gold", "Gold"), ("platinum", "Platinum")],
                        default="bronze",
                        max_length=8,
                    ),
                ),
                migrations.AddIndex(
                    model_name="crmuserprofile",
                    index=models.Index(fields=["engagement_tier"], name="crm_profile_tier_idx"),
                ),
            ],
            database_operations=[
                like_index_drop(TABLE, "engagement_tier", "crm_user_profiles_engagement_tier_351adb71_like"),
                migrations.RunSQL(
                    sql=f"ALTER INDEX {TIER_INDEX_BEFORE} RENAME TO crm_profile_tier_idx",
                    reverse_sql=f"ALTER INDEX crm_profile_tier_idx RENAME TO {TIER_INDEX_BEFORE}",
                ),
            ],
        ),
        migrations.RunSQL(
            f"ALTER TABLE {TABLE} SET (fillfactor = 70)",
            reverse_sql=f"ALTER TABLE {TABLE} SET (fillfactor = 90)",
        ),
    ]
