from django.db import models
from django.db.models import Q


class SyncDirection(models.TextChoices):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class SyncStatus(models.TextChoices):
    PROCESSING = "processing"  # inbound event claimed, being applied
    SUCCESS = "success"  # inbound applied
    STALE = "stale"  # inbound older than stored state, not applied
    FAILED = "failed"  # inbound rejected (validation) or outbound failed for good
    PENDING = "pending"  # outbound queued
    RETRYING = "retrying"  # outbound failed, another attempt scheduled
    DELIVERED = "delivered"  # outbound accepted by the app
    DEAD_LETTER = "dead_letter"  # outbound out of retries; staff can retry
    SKIPPED = "skipped"  # outbound with no APP_WEBHOOK_URL configured


class SyncEvent(models.Model):
    """One event in or out of the CRM (crm_sync_events): audit trail, idempotency and retries.

    `user_id` is a plain column, not a foreign key: failed events for unknown users are kept too.
    """

    direction = models.CharField(max_length=8, choices=SyncDirection.choices)
    user_id = models.CharField(max_length=64, blank=True)
    entity_type = models.CharField(max_length=32)
    operation = models.CharField(max_length=16)
    external_id = models.CharField(max_length=128, blank=True)
    idempotency_key = models.CharField(max_length=255)  # unique: Meta.constraints
    request_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the canonical request body.")
    status = models.CharField(max_length=16, choices=SyncStatus.choices)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    conflicts = models.JSONField(default=list, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="The event body, PII-redacted.")
    response_body = models.JSONField(null=True, blank=True, help_text="Stored response, replayed on retries.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    webhook_id = models.CharField(max_length=64, blank=True, help_text="Standard Webhooks message id (outbound).")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "crm_sync_events"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user_id", "-created_at"], name="crm_sync_user_created_idx"),
            # Lists by status (failed syncs, dead letters...): the rows staff look for. An applied inbound
            # event (success) or a delivered outbound one, nearly every row, never enters it (migration 0005).
            models.Index(
                fields=["status"],
                condition=~Q(status=SyncStatus.SUCCESS) & ~Q(status=SyncStatus.DELIVERED),
                name="crm_sync_status_idx",
            ),
            # The outbound queue (deliveries due, retries, dead letters); inbound events never enter it.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(direction=SyncDirection.OUTBOUND),
                name="crm_sync_outbound_status_idx",
            ),
            # "Did the app delete this entity later?" (every create asks): the app's applied deletes only.
            models.Index(
                fields=["user_id", "entity_type", "external_id", "occurred_at"],
                condition=Q(direction="inbound", operation="delete", status="success"),
                name="crm_sync_app_deletes_idx",
            ),
        ]
        constraints = [
            # A constraint, not `unique=True`: that also adds a varchar_pattern_ops index for LIKE
            # 'prefix%' lookups, which nothing runs, and every event's INSERT paid for (migration 0004).
            models.UniqueConstraint(fields=["idempotency_key"], name="crm_sync_events_idempotency_key_key"),
            models.CheckConstraint(condition=Q(direction__in=SyncDirection.values), name="crm_sync_direction_valid"),
            models.CheckConstraint(condition=Q(status__in=SyncStatus.values), name="crm_sync_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.entity_type}.{self.operation} {self.idempotency_key}"
