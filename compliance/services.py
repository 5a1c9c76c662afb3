"""Writes of the compliance app: the audit trail, GDPR erase and export."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from compliance.models import AuditLog
from compliance.pii import redact_pii_data
from yahealthy_crm.actors import ActorType
from yahealthy_crm.request_context import request_id_var


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def audit_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"field": {"old": x, "new": y}} for the fields whose value differs (PII redacted)."""
    changed = {
        field: {"old": _jsonable(old.get(field)), "new": _jsonable(value)}
        for field, value in new.items()
        if _jsonable(old.get(field)) != _jsonable(value)
    }
    return redact_pii_data(changed)


def audit_record(
    *,
    actor_type: ActorType | str,
    actor_id: str = "",
    action: str,
    entity_type: str,
    entity_id: str | int = "",
    user_id: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one audit row. Call inside the same transaction as the write it describes."""
    row = AuditLog(
        actor_type=actor_type,
        actor_id=str(actor_id)[:128],
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        user_id=user_id,
        changes=redact_pii_data({k: _jsonable(v) for k, v in (changes or {}).items()}),
        request_id=request_id_var.get(),
    )
    # Raw INSERT: every write of the CRM appends here (each webhook too); the ORM's insert
    # compilation costs more than the insert itself.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AuditLog._meta.db_table} "  # noqa: S608 - the table name is a constant
            "(actor_type, actor_id, action, entity_type, entity_id, user_id, changes, request_id, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, now()) RETURNING id, created_at",
            [
                row.actor_type,
                row.actor_id,
                row.action,
                row.entity_type,
                row.entity_id,
                row.user_id,
                json.dumps(row.changes, cls=DjangoJSONEncoder),
                row.request_id,
            ],
        )
        row.pk, row.created_at = cursor.fetchone()
    row._state.adding, row._state.db = False, connection.alias
    return row
