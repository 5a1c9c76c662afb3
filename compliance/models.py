from django.db import models
from django.db.models import Q

from yahealthy_crm.actors import ActorType


class AppendOnlyError(Exception):
    pass


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("The audit log is append-only.")

    def delete(self):
        raise AppendOnlyError("The audit log is append-only.")


class AuditLog(models.Model):
    """Append-only compliance trail of every write (crm_audit_log).

    `user_id` is the subject of the change (whose data), `actor_*` who made it. `changes` holds
    {"field": {"old": ..., "new": ...}} with PII already redacted.
    """

    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=128, blank=True)
    user_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64)
    entity_type = models.CharField(max_length=32)
    entity_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        db_table = "crm_audit_log"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user_id", "-created_at"], name="crm_audit_user_created_idx"),
            models.Index(fields=["entity_type", "entity_id"], name="crm_audit_entity_idx"),
            models.Index(fields=["action"], name="crm_audit_action_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(actor_type__in=ActorType.values), name="crm_audit_actor_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_type}:{self.actor_id} {self.action} {self.entity_type}#{self.entity_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("The audit log is append-only.")


class ErasureTombstone(models.Model):
    """What is left of a user after a GDPR erase (crm_erasure_tombstones): pseudonymous by design.

    `user_id_hash` is the keyed hash of the erased user id (`compliance.pii.hash_identifier`), so an
    erased id can be recognised (never recreated, repeated DELETE answers 204) without being stored.
    """

    user_id_hash = models.CharField(max_length=64, unique=True)
    erased_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=128, blank=True, help_text="Hashed when the actor is the user.")
    request_id = models.CharField(max_length=64, blank=True)
    deleted_rows = models.JSONField(default=dict, blank=True, help_text="Rows removed per table.")

    class Meta:
        db_table = "crm_erasure_tombstones"
        ordering = ["-erased_at"]

    def __str__(self) -> str:
        return f"erased {self.user_id_hash[:12]}… at {self.erased_at:%Y-%m-%d %H:%M}"
