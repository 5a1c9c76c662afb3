"""Raw SQL of the compliance app (hot paths: every write appends an audit row, every webhook asks
for a tombstone). Column lists come from the models' `_meta`."""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from compliance.models import AuditLog, ErasureTombstone
from yahealthy_crm.sql import Statement

_AUDIT_FIELDS = [f for f in AuditLog._meta.concrete_fields if not f.primary_key and f.name != "created_at"]
AUDIT_INSERT_SQL = (
    f"INSERT INTO {AuditLog._meta.db_table} "  # noqa: S608 - names from the model
    f"({', '.join(f.column for f in _AUDIT_FIELDS)}, created_at) "
    f"VALUES ({', '.join('%s::jsonb' if f.name == 'changes' else '%s' for f in _AUDIT_FIELDS)}, now()) "
    "RETURNING id, created_at"
)
_TOMBSTONE_EXISTS_SQL = f"SELECT EXISTS (SELECT 1 FROM {ErasureTombstone._meta.db_table} WHERE user_id_hash = %s)"  # noqa: S608


def audit_insert_statement(row: AuditLog) -> Statement:
    """The INSERT of one audit row (values as the model holds them; `changes` already redacted)."""
    params = [
        json.dumps(row.changes, cls=DjangoJSONEncoder) if f.name == "changes" else getattr(row, f.attname)
        for f in _AUDIT_FIELDS
    ]
    return Statement(AUDIT_INSERT_SQL, params)


def audit_insert(row: AuditLog) -> AuditLog:
    """INSERT the row now; returns it as loaded from the database (id and created_at set)."""
    statement = audit_insert_statement(row)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        pk, created_at = cursor.fetchone()
    names = ["id", *(f.attname for f in _AUDIT_FIELDS), "created_at"]
    values = [pk, *(getattr(row, f.attname) for f in _AUDIT_FIELDS), created_at]
    return AuditLog.from_db(connection.alias, names, values)


def tombstone_exists(*, user_id_hash: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_TOMBSTONE_EXISTS_SQL, [user_id_hash])
        return cursor.fetchone()[0]
