"""Raw SQL helpers shared by the apps' `queries.py` modules (the webhook hot paths)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection


@dataclass(frozen=True)
class Statement:
    """One data-modifying SQL statement (INSERT/UPDATE/DELETE ... RETURNING) and its parameters,
    built by the app that owns the table and run later, possibly together with others."""

    sql: str
    params: list = field(default_factory=list)


def statements_run(statements: list[Statement]) -> None:
    """Run the statements as ONE statement: each becomes a data-modifying CTE of `WITH ... SELECT 1`.

    PostgreSQL runs every data-modifying CTE exactly once, to completion, all on the same snapshot:
    so the statements must touch different rows (none may need another's effect). One round trip
    and one statement instead of one per write.
    """
    if not statements:
        return
    if len(statements) == 1:
        sql, params = statements[0].sql, statements[0].params
    else:
        ctes = ", ".join(f"w{index} AS ({statement.sql})" for index, statement in enumerate(statements))
        sql = f"WITH {ctes} SELECT 1"
        params = [param for statement in statements for param in statement.params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def model_from_row(model, fields: list, values: list | tuple):
    """A model instance from raw column values, as the ORM loads one: each field's `from_db_value`
    converts (JSON text to dicts, ...), then `Model.from_db` builds it (fields left out are deferred)."""
    converted = [
        value if value is None or not hasattr(field, "from_db_value") else field.from_db_value(value, None, connection)
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], converted)
