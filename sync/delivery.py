"""Outbound delivery: POST the outbox's events to the app, signed, with retries and dead letters.

One attempt per task run; the event row is the retry budget (attempts, next_attempt_at), so a
retried or duplicated task never sends twice at once and a lost broker message is found again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from compliance.services import audit_record
from sync.models import SyncDirection, SyncEvent, SyncStatus
from sync.outbox import DELIVER_TASK
from yahealthy_crm.actors import ActorType
from yahealthy_crm.queue import task_enqueue_logged, task_enqueue_on_commit

logger = logging.getLogger(__name__)

# Retry n (1-based) waits RETRY_DELAYS_S[n - 1] seconds; after the last one the event is dead-lettered.
RETRY_DELAYS_S = (1, 2, 4, 8, 16)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS_S)


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    retry_in_s: int | None = None
    http_status: int | None = None


def _outbound_secret() -> str:
    return settings.APP_WEBHOOK_SECRET or settings.CRM_WEBHOOK_SECRET


def _post_signed(event: SyncEvent, *, secret: str) -> tuple[int, str]:
    body = json.dumps(event.payload, separators=(",", ":"))
    sent_at = timezone.now()
    # Several secrets (a rotation, README "Operating"): one signature each, space-separated as the
    # Standard Webhooks spec allows, so the app verifies with either its old or its new secret.
    signature = " ".join(Webhook(key).sign(event.webhook_id, sent_at, body) for key in secret.split())
    url = settings.APP_WEBHOOK_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError("APP_WEBHOOK_URL must be an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "yahealthy-crm-sync/1",
            "webhook-id": event.webhook_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.APP_WEBHOOK_TIMEOUT_S) as response:  # noqa: S310
            return response.status, response.read(2048).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2048).decode(errors="replace") if exc.fp else ""


def outbound_event_deliver(*, event_id: int) -> DeliveryOutcome:
    """One delivery attempt; returns the outcome and, when another attempt is due, its delay.

    The event row stays locked during the attempt, so two workers never deliver it at once; if the
    worker dies mid-attempt the row is unchanged and the late-acked task runs again with the same
    `webhook-id`, which the receiver uses to drop the duplicate.
    """
    with transaction.atomic():
        event = (
            SyncEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, direction=SyncDirection.OUTBOUND)
            .first()
        )
        if event is None:
            return DeliveryOutcome(status="locked_or_missing")
        if event.status not in (SyncStatus.PENDING, SyncStatus.RETRYING):
            return DeliveryOutcome(status=event.status)
        now = timezone.now()
        if not settings.APP_WEBHOOK_URL:
            event.status, event.error, event.next_attempt_at = (
                SyncStatus.SKIPPED,
                "APP_WEBHOOK_URL is not configured.",
                None,
            )
            event.save(update_fields=["status", "error", "next_attempt_at", "updated_at"])
            return DeliveryOutcome(status=event.status)
        event.attempts += 1
        http_status = None
        secret = _outbound_secret()
        if not secret:
            ok, error = False, "No APP_WEBHOOK_SECRET or CRM_WEBHOOK_SECRET to sign the delivery with."
        else:
            try:
                http_status, text = _post_signed(event, secret=secret)
                ok = 200 <= http_status < 300
                error = "" if ok else f"HTTP {http_status}: {text[:500]}"
            except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
                ok, error = False, f"{type(exc).__name__}: {exc}"[:1000]
        retry_in = None
        update_fields = ["status", "attempts", "error", "response_status", "processed_at", "next_attempt_at"]
        if ok:
            event.status, event.processed_at, event.next_attempt_at = SyncStatus.DELIVERED, now, None
            sent = event.payload.get("data") or {}
            if "userId" in sent and sent["userId"] != event.user_id:
                # A stored pseudonym (GDPR erasure, see outbox_record): the app has the raw id now,
                # so the row keeps only the pseudonym.
                event.payload = {**event.payload, "data": {**sent, "userId": event.user_id}}
                update_fields.append("payload")
        elif event.attempts < MAX_ATTEMPTS and secret:
            retry_in = RETRY_DELAYS_S[event.attempts - 1]
            event.status, event.next_attempt_at = SyncStatus.RETRYING, now + dt.timedelta(seconds=retry_in)
        else:
            event.status, event.next_attempt_at = SyncStatus.DEAD_LETTER, None
        event.error, event.response_status = error, http_status
        event.save(update_fields=[*update_fields, "updated_at"])
    if not ok:
        logger.warning("delivery of sync event %s failed (attempt %s): %s", event_id, event.attempts, error)
    return DeliveryOutcome(status=event.status, retry_in_s=retry_in, http_status=http_status)


def outbound_events_retry(
    *, event_ids: list[int] | None = None, statuses=(SyncStatus.DEAD_LETTER,), actor_id: str = ""
) -> int:
    """Put dead-lettered (or skipped) outbound events back in the queue with a fresh retry budget."""
    events = SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND, status__in=statuses)
    if event_ids is not None:
        events = events.filter(pk__in=event_ids)
    with transaction.atomic():
        ids = list(events.select_for_update(skip_locked=True).values_list("pk", flat=True))
        SyncEvent.objects.filter(pk__in=ids).update(
            status=SyncStatus.PENDING,
            attempts=0,
            error="",
            next_attempt_at=timezone.now(),
            updated_at=timezone.now(),
        )
        if ids:
            audit_record(
                actor_type=ActorType.STAFF,
                actor_id=actor_id,
                action="sync.outbound_retried",
                entity_type="sync_event",
                changes={"syncEventIds": ids},
            )
        for event_id in ids:
            task_enqueue_on_commit(DELIVER_TASK, args=[event_id])
    return len(ids)


def outbound_events_requeue_stuck(*, older_than: dt.timedelta = dt.timedelta(minutes=5)) -> int:
    """Re-enqueue pending/retrying events whose attempt is overdue (a lost broker message)."""
    cutoff = timezone.now() - older_than
    ids = list(
        SyncEvent.objects.filter(
            direction=SyncDirection.OUTBOUND,
            status__in=[SyncStatus.PENDING, SyncStatus.RETRYING],
            next_attempt_at__lt=cutoff,
        ).values_list("pk", flat=True)
    )
    for event_id in ids:
        # Logged, not raised: the event stays pending and the next sweep tries again.
        task_enqueue_logged(DELIVER_TASK, args=[event_id])
    return len(ids)
