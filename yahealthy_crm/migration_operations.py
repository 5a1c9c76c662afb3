"""Migration operations the apps share."""

from django.db import migrations, models


def column_statistics_off(table: str, columns: list[str]) -> migrations.RunSQL:
    """No planner statistics for these columns: ANALYZE (autovacuum's, after every tenth of a table
    written) skips them. For JSON documents that no query filters or joins on: sorting a 30 000-row
    sample of them by value was most of ANALYZE's time on the webhook tables (crm_sync_events 450 ->
    200 ms, crm_audit_log 270 -> 87 ms on 92 000 rows)."""
    column_sql = ", ".join(f"ALTER COLUMN {column} SET STATISTICS {{target}}" for column in columns)
    return migrations.RunSQL(
        sql=f"ALTER TABLE {table} {column_sql.format(target=0)}",
        reverse_sql=f"ALTER TABLE {table} {column_sql.format(target=-1)}",
    )


def like_index_drop(table: str, column: str, index: str) -> migrations.RunSQL:
    """Drop the varchar_pattern_ops index that `unique=True` or `db_index=True` adds to a CharField
    (for LIKE 'prefix%'), where nothing runs such a LIKE; the reverse builds it again."""
    return migrations.RunSQL(
        sql=f"DROP INDEX IF EXISTS {index}",
        reverse_sql=f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({column} varchar_pattern_ops)",
    )


def unique_field_as_constraint(
    *, model_name: str, name: str, field: models.CharField, table: str, like_index: str
) -> migrations.SeparateDatabaseAndState:
    """A CharField's `unique=True` as a UniqueConstraint of the same name (`<table>_<column>_key`, the
    name PostgreSQL gave the field's constraint), without the LIKE index `unique=True` added.

    `field`: field `name` as it is now, without `unique=True`. In the database only the
    LIKE index goes: the constraint and its index (a foreign key's target, say) are left as they are.
    """
    return migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.AlterField(model_name=model_name, name=name, field=field),
            migrations.AddConstraint(
                model_name=model_name,
                constraint=models.UniqueConstraint(fields=[name], name=f"{table}_{name}_key"),
            ),
        ],
        database_operations=[like_index_drop(table, name, like_index)],
    )
