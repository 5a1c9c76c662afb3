"""Reads of the compliance app: audit trail, erasure tombstones, the data held about a user."""

from __future__ import annotations

from django.db.models import QuerySet

from compliance.models import AuditLog, ErasureTombstone
from compliance.pii import hash_identifier
from compliance.queries import tombstone_exists


def user_id_hash(*, user_id: str) -> str:
    return hash_identifier(user_id, kind="user_id")


def erasure_tombstone_get(*, user_id: str) -> ErasureTombstone | None:
    """The tombstone of an erased user id, None when the id was never erased."""
    return ErasureTombstone.objects.filter(user_id_hash=user_id_hash(user_id=user_id)).first()


def user_is_erased(*, user_id: str) -> bool:
    """True when `user_id` was erased (GDPR): it must never be recreated (REST or sync)."""
    return tombstone_exists(user_id_hash=user_id_hash(user_id=user_id))


def audit_log_for_user(*, user_id: str) -> QuerySet[AuditLog]:
    """Audit rows about `user_id`, newest first."""
    return AuditLog.objects.filter(user_id=user_id).order_by("-created_at", "-id")
