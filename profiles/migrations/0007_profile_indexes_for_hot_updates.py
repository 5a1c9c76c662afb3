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

from yahealthy_crm.migration_operations import like_index_drop

TABLE = "crm_user_profiles"
LIKE_INDEXES = {
    "user_id": "crm_user_profiles_user_id_7a38dc0a_like",
    "engagement_tier": "crm_user_profiles_engagement_tier_351adb71_like",
}
TIER_INDEX_BEFORE = "crm_user_profiles_engagement_tier_351adb71"


class Migration(migrations.Migration):
    dependencies = [("profiles", "0006_last_active_hot_updates")]

    operations = [
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
                migrations.AlterField(
                    model_name="crmuserprofile",
                    name="user_id",
                    field=models.CharField(help_text="The YAHealthy app's user id.", max_length=64),
                ),
                migrations.AddIndex(
                    model_name="crmuserprofile",
                    index=models.Index(fields=["engagement_tier"], name="crm_profile_tier_idx"),
                ),
                migrations.AddConstraint(
                    model_name="crmuserprofile",
                    constraint=models.UniqueConstraint(fields=("user_id",), name="crm_user_profiles_user_id_key"),
                ),
            ],
            database_operations=[
                *(like_index_drop(TABLE, column, name) for column, name in LIKE_INDEXES.items()),
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
