"""GDPR: erase everything the CRM holds about a user, or export it (data portability).

Spans every app's tables, so it sits above the domains and coaching (design.md "Layers"); the
audit log, PII hashing and tombstones it uses are compliance's lower layer.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from activities.models import UserActivity
from coaching.models import AiInsight, CoachingConversation, CoachingSession
from compliance.models import AuditLog, ErasureTombstone
from compliance.pii import hash_identifier
from compliance.selectors import erasure_tombstone_get, user_id_hash
from compliance.services import audit_record
from goals.models import HealthGoal
from profiles.models import CrmUserProfile
from sync.models import SyncEvent
from sync.outbox import outbox_record
from yahealthy_crm.actors import ActorType
from yahealthy_crm.errors import ApplicationError, ErrorCode
from yahealthy_crm.request_context import request_id_var


def _rows(queryset: QuerySet) -> list[dict[str, Any]]:
    """Every concrete column of every row, keyed by column attribute name (`user_id`, not `user`)."""
    attnames = [f.attname for f in queryset.model._meta.concrete_fields]
    return [{name: getattr(obj, name) for name in attnames} for obj in queryset]


def user_data_collect(*, user_id: str) -> dict[str, Any] | None:
    """Every row the CRM holds about `user_id`, table by table (None when there is no profile).

    Eight queries whatever the data size. Embeddings are included: they are derived personal data.
    """
    profile = CrmUserProfile.objects.filter(user_id=user_id).first()
    if profile is None:
        return None
    data = {
        "profile": _rows(CrmUserProfile.objects.filter(pk=profile.pk))[0],
        "goals": _rows(HealthGoal.objects.filter(user_id=user_id).order_by("created_at", "id")),
        "activities": _rows(UserActivity.objects.filter(user_id=user_id).order_by("occurred_at", "id")),
        "insights": _rows(AiInsight.objects.filter(user_id=user_id).order_by("created_at", "id")),
        "coachingConversations": _rows(
            CoachingConversation.objects.filter(user_id=user_id).order_by("created_at", "id")
        ),
        "coachingSessions": _rows(CoachingSession.objects.filter(user_id=user_id).order_by("created_at", "id")),
        "syncEvents": _rows(SyncEvent.objects.filter(user_id=user_id).order_by("created_at", "id")),
        "auditLog": _rows(AuditLog.objects.filter(user_id=user_id).order_by("created_at", "id")),
    }
    for table in ("activities", "coachingSessions"):
        for row in data[table]:
            if row.get("embedding") is not None:
                row["embedding"] = [float(x) for x in row["embedding"]]
    return data


def _user_querysets(*, user_id: str) -> list[tuple[str, Any]]:
    """The user's rows in the non-audit tables (coaching conversations with their sessions), children first."""
    return [
        ("insights", AiInsight.objects.filter(user_id=user_id)),
        ("coachingSessions", CoachingSession.objects.filter(user_id=user_id)),
        ("coachingConversations", CoachingConversation.objects.filter(user_id=user_id)),
        ("activities", UserActivity.objects.filter(user_id=user_id)),
        ("goals", HealthGoal.objects.filter(user_id=user_id)),
        ("syncEvents", SyncEvent.objects.filter(user_id=user_id)),
    ]


def gdpr_erase(*, user_id: str, actor_type: str, actor_id: str) -> ErasureTombstone:
    """Erase everything the CRM holds about `user_id` in one transaction; leave a pseudonymous tombstone.

    Removes the user's rows from the seed's seven tables and the coaching conversations (embeddings
    and sync payloads with them, and the audit rows about the user: the append-only trigger allows
    that only with `crm.gdpr_erase` set for this transaction). Idempotent: an already erased id
    returns its existing tombstone (and sends nothing again); an id that never existed is a 404. The
    erase itself is audited without naming the user (tombstone id only) and sent to the app
    (`user.erased`) unless the app asked for it.
    """

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
        # Recorded after the user's rows (their old sync events too) are gone, so it survives the
        # erase; the stored row names only the tombstone's pseudonym (see outbox_record).
        outbox_record(
            user_id=user_id,
            stored_user_id=tombstone.user_id_hash,
            entity_type="user",
            operation="erased",
            entity_id=tombstone.user_id_hash,
            origin=actor_type,
            data={"erasedAt": tombstone.erased_at.isoformat()},
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
            "crm_coaching_conversations": data["coachingConversations"],
            "crm_coaching_sessions": data["coachingSessions"],
            "crm_sync_events": data["syncEvents"],
            "crm_audit_log": data["auditLog"],
        },
    }
