"""Writes of the compliance app: the audit trail (and, later, GDPR erase)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from compliance.models import ActorType, AuditLog
from compliance.pii import redact_pii_data
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
    return AuditLog.objects.create(
        actor_type=actor_type,
        actor_id=str(actor_id)[:128],
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        user_id=user_id,
        changes=redact_pii_data({k: _jsonable(v) for k, v in (changes or {}).items()}),
        request_id=request_id_var.get(),
    )
