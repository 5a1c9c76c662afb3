"""Writes of the compliance app: the audit trail, GDPR erase and export."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from compliance.models import AuditLog
from compliance.pii import redact_pii_data
from compliance.queries import audit_insert
from yahealthy_crm.actors import ActorType
from yahealthy_crm.request_context import request_id_var


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def audit_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"field": {"old": x, "new": y}} for the fields whose value differs.

    Not redacted here: every audit row is built by `audit_row_build`, which redacts its changes (the
    one place). Redacting here as well cost a webhook event about 30 us of Python and changed nothing:
    redaction leaves its own tokens as they are.
    """
    changed = {}
    for field, value in new.items():
        old_value, new_value = _jsonable(old.get(field)), _jsonable(value)
        if old_value != new_value:
            changed[field] = {"old": old_value, "new": new_value}
    return changed


def audit_row_build(
    *,
    actor_type: ActorType | str,
    actor_id: str = "",
    action: str,
    entity_type: str,
    entity_id: str | int = "",
    user_id: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditLog:
    """The audit row to append (not saved): `audit_record` inserts it now, a hot path may defer it.
    Its changes are PII-redacted here, for every caller."""
    return AuditLog(
        actor_type=actor_type,
        actor_id=str(actor_id)[:128],
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        user_id=user_id,
        changes=redact_pii_data({k: _jsonable(v) for k, v in (changes or {}).items()}),
        request_id=request_id_var.get(),
    )


def audit_record(**fields: Any) -> AuditLog:
    """Append one audit row (see `audit_row_build` for the fields). Call inside the same transaction
    as the write it describes."""
    return audit_insert(audit_row_build(**fields))


def audit_record_many(rows: list[AuditLog]) -> list[AuditLog]:
    """Append many audit rows (built with `audit_row_build`) in one INSERT: bulk jobs that change
    many users at once keep one row per user without one statement per user."""
    return AuditLog.objects.bulk_create(rows) if rows else []
