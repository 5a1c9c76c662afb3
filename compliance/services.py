"""Writes of the compliance app: the audit trail, GDPR erase and export."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from compliance.models import ActorType, AuditLog, ErasureTombstone
from compliance.pii import hash_identifier, redact_pii_data
from compliance.selectors import erasure_tombstone_get, user_data_collect, user_id_hash
from yahealthy_crm.errors import ApplicationError, ErrorCode
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


def _user_querysets(*, user_id: str) -> list[tuple[str, Any]]:
    """The user's rows in the six non-audit tables, children first."""
    from activities.models import UserActivity
    from coaching.models import AiInsight, CoachingSession
    from goals.models import HealthGoal
    from sync.models import SyncEvent

    return [
        ("insights", AiInsight.objects.filter(user_id=user_id)),
        ("coachingSessions", CoachingSession.objects.filter(user_id=user_id)),
        ("activities", UserActivity.objects.filter(user_id=user_id)),
        ("goals", HealthGoal.objects.filter(user_id=user_id)),
        ("syncEvents", SyncEvent.objects.filter(user_id=user_id)),
    ]


def gdpr_erase(*, user_id: str, actor_type: str, actor_id: str) -> ErasureTombstone:
    """Erase everything the CRM holds about `user_id` in one transaction; leave a pseudonymous tombstone.

    Removes the user's rows from all seven tables (embeddings and sync payloads with them, and the
    audit rows about the user: the append-only trigger allows that only with `crm.gdpr_erase` set for
    this transaction). Idempotent: an already erased id returns its existing tombstone; an id that
    never existed is a 404. The erase itself is audited without naming the user (tombstone id only).
    """
    from profiles.models import CrmUserProfile

    with transaction.atomic():
        profile = CrmUserProfile.objects.select_for_update().filter(user_id=user_id).first()
        if profile is None:
            tombstone = erasure_tombstone_get(user_id=user_id)
            if tombstone is None:
                raise ApplicationError("User not found.", code=ErrorCode.NOT_FOUND, status_code=404)
            return tombstone
        deleted: dict[str, int] = {}
        for label, queryset in _user_querysets(user_id=user_id):
            deleted[label] = queryset.delete()[0]
        # Deleting the profile last also cascades to any table added later with a FK to it.
        deleted["profile"] = CrmUserProfile.objects.filter(pk=profile.pk).delete()[0]
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('crm.gdpr_erase', 'on', true)")  # SET LOCAL
            cursor.execute(
                "DELETE FROM crm_audit_log WHERE user_id = %s OR (actor_type = %s AND actor_id = %s)",
                [user_id, ActorType.USER, user_id],
            )
            deleted["auditLog"] = cursor.rowcount
            cursor.execute("SELECT set_config('crm.gdpr_erase', 'off', true)")
        is_self = actor_type == ActorType.USER and actor_id == user_id
        tombstone = ErasureTombstone.objects.create(
            user_id_hash=user_id_hash(user_id=user_id),
            erased_at=timezone.now(),
            actor_type=actor_type,
            actor_id=hash_identifier(actor_id, kind="user_id") if is_self else actor_id[:128],
            request_id=request_id_var.get(),
            deleted_rows=deleted,
        )
        audit_record(
            actor_type=actor_type,
            actor_id=tombstone.actor_id,
            action="user.erased",
            entity_type="erasure_tombstone",
            entity_id=tombstone.pk,
            changes={"deleted_rows": deleted},
        )
    return tombstone


def user_export(*, user_id: str, actor_type: str, actor_id: str) -> dict[str, Any]:
    """Everything the CRM holds about `user_id` (GDPR data portability), JSON-ready; the export is audited.

    The audit row of this export is written after the data is collected, so it is not in it.
    """
    data = user_data_collect(user_id=user_id)
    if data is None:
        raise ApplicationError("User not found.", code=ErrorCode.NOT_FOUND, status_code=404)
    audit_record(
        actor_type=actor_type,
        actor_id=actor_id,
        action="user.exported",
        entity_type="profile",
        entity_id=data["profile"]["id"],
        user_id=user_id,
        changes={table: len(rows) for table, rows in data.items() if isinstance(rows, list)},
    )
    return {
        "userId": user_id,
        "exportedAt": timezone.now().isoformat(),
        "tables": {
            "crm_user_profiles": [data["profile"]],
            "crm_health_goals": data["goals"],
            "crm_user_activities": data["activities"],
            "crm_ai_insights": data["insights"],
            "crm_coaching_sessions": data["coachingSessions"],
            "crm_sync_events": data["syncEvents"],
            "crm_audit_log": data["auditLog"],
        },
    }
