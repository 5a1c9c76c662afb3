"""Reads of the compliance app: audit trail, erasure tombstones, the data held about a user."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import QuerySet

from compliance.models import AuditLog, ErasureTombstone
from compliance.pii import hash_identifier


def user_id_hash(*, user_id: str) -> str:
    return hash_identifier(user_id, kind="user_id")


def erasure_tombstone_get(*, user_id: str) -> ErasureTombstone | None:
    """The tombstone of an erased user id, None when the id was never erased."""
    return ErasureTombstone.objects.filter(user_id_hash=user_id_hash(user_id=user_id)).first()


def user_is_erased(*, user_id: str) -> bool:
    """True when `user_id` was erased (GDPR): it must never be recreated (REST or sync)."""
    # Raw SQL: asked on every inbound webhook, where the ORM's query building is a third of the cost.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {ErasureTombstone._meta.db_table} WHERE user_id_hash = %s)",  # noqa: S608
            [user_id_hash(user_id=user_id)],
        )
        return cursor.fetchone()[0]


def audit_log_for_user(*, user_id: str) -> QuerySet[AuditLog]:
    """Audit rows about `user_id`, newest first."""
    return AuditLog.objects.filter(user_id=user_id).order_by("-created_at", "-id")


def _rows(queryset: QuerySet) -> list[dict[str, Any]]:
    """Every concrete column of every row, keyed by column attribute name (`user_id`, not `user`)."""
    attnames = [f.attname for f in queryset.model._meta.concrete_fields]
    return [{name: getattr(obj, name) for name in attnames} for obj in queryset]


def user_data_collect(*, user_id: str) -> dict[str, Any] | None:
    """Every row the CRM holds about `user_id`, table by table (None when there is no profile).

    Seven queries whatever the data size. Embeddings are included: they are derived personal data.
    """
    from activities.models import UserActivity
    from coaching.models import AiInsight, CoachingSession
    from goals.models import HealthGoal
    from profiles.models import CrmUserProfile
    from sync.models import SyncEvent

    profile = CrmUserProfile.objects.filter(user_id=user_id).first()
    if profile is None:
        return None
    data = {
        "profile": _rows(CrmUserProfile.objects.filter(pk=profile.pk))[0],
        "goals": _rows(HealthGoal.objects.filter(user_id=user_id).order_by("created_at", "id")),
        "activities": _rows(UserActivity.objects.filter(user_id=user_id).order_by("occurred_at", "id")),
        "insights": _rows(AiInsight.objects.filter(user_id=user_id).order_by("created_at", "id")),
        "coachingSessions": _rows(CoachingSession.objects.filter(user_id=user_id).order_by("created_at", "id")),
        "syncEvents": _rows(SyncEvent.objects.filter(user_id=user_id).order_by("created_at", "id")),
        "auditLog": _rows(AuditLog.objects.filter(user_id=user_id).order_by("created_at", "id")),
    }
    for table in ("activities", "coachingSessions"):
        for row in data[table]:
            if row.get("embedding") is not None:
                row["embedding"] = [float(x) for x in row["embedding"]]
    return data
