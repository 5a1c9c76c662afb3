"""Writes of the sync app: inbound app events (signed, idempotent, ordered) and outbound deliveries.

Inbound, in order: size -> Standard Webhooks signature -> JSON -> rate limit -> GDPR tombstone ->
validation -> idempotency claim -> apply. The claim is an INSERT into `crm_sync_events` under the
unique `idempotency_key`, in the same transaction as the change and the stored response: a parallel
duplicate waits on that insert and then replays the committed response, so an event applies once.
"""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from rest_framework import status
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from activities.models import NOT_EMBEDDED_TYPES, ActivityType
from activities.services import (
    ACTIVITY_COLUMNS,
    activity_delete,
    activity_embeddings_schedule,
    activity_get_for_app_event,
    activity_upsert_from_app,
)
from compliance.models import ActorType
from compliance.pii import redact_pii, redact_pii_data
from compliance.selectors import user_is_erased
from compliance.services import audit_changes, audit_record
from goals.models import GoalMetric
from goals.services import GoalNotFoundError, goal_apply_app_event, goal_progress_update_for_activity
from profiles.models import CrmUserProfile
from profiles.services import (
    profile_apply_app_event,
    profile_get_or_create_for_app,
    profile_touch_last_active,
)
from sync.error_codes import SyncErrorCode
from sync.models import SyncDirection, SyncEvent, SyncStatus
from sync.schemas import ACTIVITY_ENTITY_TYPES, EventEnvelopeSerializer, payload_serializer_for
from sync.selectors import deleted_after
from yahealthy_crm.errors import ApplicationError
from yahealthy_crm.ratelimit import WEBHOOK_RATE, rate_limit_enforce

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
# A duplicate waits this long for the first request with its key to commit, then answers 409.
IN_FLIGHT_WAIT = "5s"
APP_ACTOR_ID = "app_webhook"
GOAL_METRICS = set(GoalMetric.values)


@dataclass(frozen=True)
class WebhookResult:
    status_code: int
    body: dict
    replayed: bool = False


@dataclass
class _Applied:
    result_status: str  # success | stale
    data: dict
    changes: dict = field(default_factory=dict)
    conflicts: list = field(default_factory=list)
    entity_id: str = ""
    embed_activity_id: int | None = None


# --- Inbound ----------------------------------------------------------------------------------------


def _webhook(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError) as exc:
        logger.error("CRM_WEBHOOK_SECRET is not a valid Standard Webhooks secret (whsec_<base64>)")
        raise ApplicationError(
            "Webhook verification is misconfigured on the CRM side.",
            code=SyncErrorCode.SECRET_NOT_CONFIGURED,
            status_code=status.HTTP_401_UNAUTHORIZED,
        ) from exc


def webhook_signature_verify(*, body: bytes, headers: Mapping[str, str]) -> None:
    """Standard Webhooks check (webhook-id/-timestamp/-signature, HMAC-SHA256, 5 min tolerance).

    Runs before the body is parsed. Without CRM_WEBHOOK_SECRET every event is refused: an unsigned
    endpoint would let anyone write health data.
    """
    if not settings.CRM_WEBHOOK_SECRET:
        raise ApplicationError(
            "Webhooks are refused: CRM_WEBHOOK_SECRET is not configured.",
            code=SyncErrorCode.SECRET_NOT_CONFIGURED,
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            "The webhook body is not UTF-8.",
            code=SyncErrorCode.SIGNATURE_INVALID,
            status_code=status.HTTP_401_UNAUTHORIZED,
        ) from exc
    try:
        _webhook(settings.CRM_WEBHOOK_SECRET).verify(text, dict(headers.items()), json_parse=False)
    except (WebhookVerificationError, binascii.Error, ValueError) as exc:
        reason = str(exc) if isinstance(exc, WebhookVerificationError) else "Malformed signature header"
        raise ApplicationError(
            f"Webhook signature verification failed: {reason}. Sign the request per the Standard "
            "Webhooks spec (webhook-id, webhook-timestamp within 5 minutes, webhook-signature).",
            code=SyncErrorCode.SIGNATURE_INVALID,
            status_code=status.HTTP_401_UNAUTHORIZED,
        ) from exc


def request_hash_compute(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _event_reject(
    *, data: dict, request_hash: str, error: ApplicationError, idempotency_key: str = ""
) -> ApplicationError:
    """Record a rejected event (status failed) and return the error to raise.

    Rejections do not reserve the idempotency key: the app can fix the event and send it again.
    """
    body = {
        "status": "error",
        "error": {"code": error.code, "message": error.message, "details": error.details},
    }
    SyncEvent.objects.create(
        direction=SyncDirection.INBOUND,
        user_id=_text(data.get("userId"), 64),
        entity_type=_text(data.get("entityType"), 32),
        operation=_text(data.get("operation"), 16),
        external_id=_text(data.get("externalId"), 128),
        idempotency_key=f"rejected:{uuid.uuid4().hex}",
        request_hash=request_hash,
        status=SyncStatus.FAILED,
        attempts=1,
        error=redact_pii(json.dumps({"idempotencyKey": idempotency_key, **body["error"]}, default=str)),
        payload=redact_pii_data(data),
        response_body=redact_pii_data(json.loads(json.dumps(body, default=str))),
        response_status=error.status_code,
        processed_at=timezone.now(),
    )
    return error


def _validation_error(details: dict, message: str = "The event has invalid fields.") -> ApplicationError:
    return ApplicationError(
        message,
        code=SyncErrorCode.VALIDATION_ERROR,
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        details=details,
    )


def _signed_time(headers: Mapping[str, str]) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(headers.get("webhook-timestamp", "0")), tz=dt.UTC)


def webhook_body_size_check(*, size: int) -> None:
    """413 for a body over MAX_BODY_BYTES (the view also checks the declared length before reading)."""
    if size > MAX_BODY_BYTES:
        raise ApplicationError(
            f"The webhook body is larger than {MAX_BODY_BYTES // 1024} KB.",
            code=SyncErrorCode.PAYLOAD_TOO_LARGE,
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )


def webhook_event_ingest(
    *, body: bytes, headers: Mapping[str, str], idempotency_key: str = "", request=None
) -> WebhookResult:
    """Verify, validate and apply one app event; the 202 body (or the replayed one) to answer."""
    webhook_body_size_check(size=len(body))
    webhook_signature_verify(body=body, headers=headers)
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ApplicationError(
            f"The body is not valid JSON: {exc}.",
            code=SyncErrorCode.MALFORMED_JSON,
            status_code=status.HTTP_400_BAD_REQUEST,
        ) from exc
    if not isinstance(data, dict):
        raise ApplicationError(
            "The body must be a JSON object.",
            code=SyncErrorCode.MALFORMED_JSON,
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    user_id = data.get("userId")
    if request is not None and isinstance(user_id, str) and user_id:
        rate_limit_enforce(request, group="sync.webhook", key_value=user_id[:64], rate=WEBHOOK_RATE)
    if isinstance(user_id, str) and user_id and user_is_erased(user_id=user_id):
        raise ApplicationError(
            "This user was erased under GDPR; the CRM no longer accepts their data.",
            code=SyncErrorCode.USER_ERASED,
            status_code=status.HTTP_410_GONE,
        )

    request_hash = request_hash_compute(data)
    envelope = EventEnvelopeSerializer(data=data)
    if not envelope.is_valid():
        raise _event_reject(
            data=data,
            request_hash=request_hash,
            error=_validation_error(envelope.errors),
            idempotency_key=idempotency_key,
        )
    event = envelope.validated_data
    payload_serializer = payload_serializer_for(event["entityType"], event["operation"], event["payload"])
    if payload_serializer is not None and not payload_serializer.is_valid():
        raise _event_reject(
            data=data,
            request_hash=request_hash,
            error=_validation_error({"payload": payload_serializer.errors}),
            idempotency_key=idempotency_key,
        )
    occurred_at = event["occurredAt"] or _signed_time(headers)
    if not idempotency_key:
        # The seed's formula; without occurredAt the signed message id is the stable identity.
        if event["occurredAt"]:
            idempotency_key = f"{event['entityType']}:{event['externalId']}:{event['operation']}:{data['occurredAt']}"
        else:
            idempotency_key = f"webhook:{headers.get('webhook-id', '')}"
    if len(idempotency_key) > 255:
        raise _event_reject(
            data=data,
            request_hash=request_hash,
            error=_validation_error({"Idempotency-Key": ["At most 255 characters."]}),
        )
    try:
        return _event_claim_and_apply(
            data=data,
            event=event,
            payload_serializer=payload_serializer,
            occurred_at=occurred_at,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
    except GoalNotFoundError as exc:
        raise _event_reject(
            data=data,
            request_hash=request_hash,
            idempotency_key=idempotency_key,
            error=ApplicationError(
                f"No goal with externalId '{exc}' for this user; send a create first.",
                code=SyncErrorCode.ENTITY_NOT_FOUND,
                status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                details={"externalId": [f"Unknown goal '{exc}'."]},
            ),
        ) from exc


def _event_claim(*, event: dict, data: dict, occurred_at: dt.datetime, idempotency_key: str, request_hash: str):
    """INSERT the event row unless its key exists; returns the new id or None. Waits for in-flight twins."""
    with connection.cursor() as cursor:
        try:
            # set_config(..., true) is SET LOCAL lock_timeout inside the statement (one round trip
            # less): the row is produced, and the setting in force, before the key's lock is waited on.
            cursor.execute(
                """
                INSERT INTO crm_sync_events (direction, user_id, entity_type, operation, external_id,
                    idempotency_key, request_hash, status, attempts, error, conflicts, payload,
                    occurred_at, webhook_id, created_at, updated_at)
                SELECT %s, %s, %s, %s, %s, %s, %s, %s, 1, '', '[]'::jsonb, %s::jsonb, %s, '', now(), now()
                FROM (SELECT set_config('lock_timeout', %s, true)) AS in_flight_wait
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING id
                """,
                [
                    SyncDirection.INBOUND,
                    event["userId"],
                    event["entityType"],
                    event["operation"],
                    event["externalId"],
                    idempotency_key,
                    request_hash,
                    SyncStatus.PROCESSING,
                    json.dumps(redact_pii_data(data)),
                    occurred_at,
                    IN_FLIGHT_WAIT,
                ],
            )
        except OperationalError as exc:
            raise ApplicationError(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                code=SyncErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT,
                status_code=status.HTTP_409_CONFLICT,
            ) from exc
        row = cursor.fetchone()
    # lock_timeout stays set for the rest of this short transaction: any lock held longer than
    # IN_FLIGHT_WAIT by a twin request is better answered with 409 than waited for.
    return row[0] if row else None


def _event_claim_and_apply(
    *, data, event, payload_serializer, occurred_at, idempotency_key, request_hash
) -> WebhookResult:
    with transaction.atomic():
        event_id = _event_claim(
            event=event,
            data=data,
            occurred_at=occurred_at,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        if event_id is None:
            return _event_replay(idempotency_key=idempotency_key, request_hash=request_hash)
        profile, _ = profile_get_or_create_for_app(user_id=event["userId"])
        applied = _event_apply(
            profile=profile, event=event, payload_serializer=payload_serializer, occurred_at=occurred_at
        )
        applied.data["syncEventId"] = event_id
        applied.data["conflicts"] = applied.conflicts
        response = {
            "status": "accepted",
            "idempotencyKey": idempotency_key,
            "result": {"status": applied.result_status, "data": applied.data},
        }
        response_json = json.dumps(response, default=str)
        response = json.loads(response_json)
        _event_finish(
            event_id=event_id,
            outcome=SyncStatus.SUCCESS if applied.result_status == "success" else SyncStatus.STALE,
            conflicts=applied.conflicts,
            response_json=response_json,
        )
        if applied.result_status == "success":
            audit_record(
                actor_type=ActorType.APP,
                actor_id=APP_ACTOR_ID,
                action=f"{event['entityType']}.{event['operation']}",
                entity_type=event["entityType"],
                entity_id=applied.entity_id,
                user_id=event["userId"],
                changes={**applied.changes, "syncEventId": event_id},
            )
        if applied.embed_activity_id is not None:
            transaction.on_commit(activity_embeddings_schedule)
    return WebhookResult(status.HTTP_202_ACCEPTED, response)


def _event_finish(*, event_id: int, outcome: str, conflicts: list, response_json: str) -> None:
    """Store the outcome and the 202 response a replay returns (raw SQL: once per webhook)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crm_sync_events SET status = %s, conflicts = %s::jsonb, response_body = %s::jsonb,
                response_status = %s, processed_at = now(), updated_at = now()
            WHERE id = %s
            """,
            [outcome, json.dumps(conflicts, default=str), response_json, status.HTTP_202_ACCEPTED, event_id],
        )


def _event_replay(*, idempotency_key: str, request_hash: str) -> WebhookResult:
    stored = SyncEvent.objects.get(idempotency_key=idempotency_key)
    if stored.request_hash != request_hash:
        raise ApplicationError(
            "This Idempotency-Key was already used with a different request body.",
            code=SyncErrorCode.IDEMPOTENCY_KEY_REUSED,
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
            details={"idempotencyKey": idempotency_key, "syncEventId": stored.pk},
        )
    if stored.status == SyncStatus.PROCESSING or stored.response_body is None:
        raise ApplicationError(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code=SyncErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT,
            status_code=status.HTTP_409_CONFLICT,
        )
    return WebhookResult(stored.response_status or status.HTTP_202_ACCEPTED, stored.response_body, replayed=True)


def _event_apply(*, profile: CrmUserProfile, event: dict, payload_serializer, occurred_at) -> _Applied:
    entity_type = event["entityType"]
    if entity_type == "profile":
        applied = _profile_apply(profile=profile, payload_serializer=payload_serializer, occurred_at=occurred_at)
    elif entity_type == "goal":
        applied = _goal_apply(
            profile=profile, event=event, payload_serializer=payload_serializer, occurred_at=occurred_at
        )
    elif entity_type in ACTIVITY_ENTITY_TYPES:
        applied = _activity_apply(
            profile=profile, event=event, payload_serializer=payload_serializer, occurred_at=occurred_at
        )
    else:  # the envelope serializer already refused it
        raise AssertionError(entity_type)
    if applied.result_status == "success" and entity_type != "profile":
        profile_touch_last_active(profile=profile, occurred_at=occurred_at)
    return applied


def _profile_apply(*, profile: CrmUserProfile, payload_serializer, occurred_at) -> _Applied:
    fields = payload_serializer.profile_fields()
    changes, conflicts, stale = profile_apply_app_event(profile=profile, fields=fields, occurred_at=occurred_at)
    all_stale = bool(fields) and set(stale) >= {f if f not in ("email", "phone") else f"{f}_hash" for f in fields}
    return _Applied(
        result_status="stale" if all_stale else "success",
        data={"userId": profile.user_id, "updatedFields": sorted(changes)},
        changes=changes,
        conflicts=conflicts,
        entity_id=str(profile.pk),
    )


def _goal_apply(*, profile: CrmUserProfile, event: dict, payload_serializer, occurred_at) -> _Applied:
    data = dict(payload_serializer.validated_data) if payload_serializer is not None else {}
    goal, outcome, changes = goal_apply_app_event(
        user=profile,
        operation=event["operation"],
        external_id=event["externalId"],
        data=data,
        occurred_at=occurred_at,
    )
    if outcome == "stale":
        return _Applied(
            result_status="stale",
            data={"goalId": goal.pk, "externalId": event["externalId"]},
            conflicts=[_stale_conflict(event, goal.source_updated_at)],
            entity_id=str(goal.pk),
        )
    result = {"externalId": event["externalId"]}
    if goal is None:
        result.update({"goalId": changes.get("deleted", {}).get("old"), "deleted": bool(changes)})
    else:
        result.update(
            {
                "goalId": goal.pk,
                "goalType": goal.goal_type,
                "metric": goal.metric,
                "status": goal.status,
                "progressPct": float(goal.progress_pct),
                "streakDays": goal.streak_days,
            }
        )
    return _Applied(
        result_status="success",
        data=result,
        changes=changes,
        entity_id=str(result["goalId"] or ""),
    )


def _stale_conflict(event: dict, stored_at: dt.datetime | None) -> dict:
    return {
        "entity": event["entityType"],
        "externalId": event["externalId"],
        "resolution": "kept_newer",
        "reason": "stale",
        "storedUpdatedAt": stored_at.isoformat() if stored_at else None,
    }


def _activity_apply(*, profile: CrmUserProfile, event: dict, payload_serializer, occurred_at) -> _Applied:
    activity_type, external_id, operation = event["entityType"], event["externalId"], event["operation"]
    existing = activity_get_for_app_event(user_id=profile.user_id, activity_type=activity_type, external_id=external_id)
    if existing is not None and existing.source_updated_at and occurred_at < existing.source_updated_at:
        return _Applied(
            result_status="stale",
            data={"activityId": existing.pk, "externalId": external_id},
            conflicts=[_stale_conflict(event, existing.source_updated_at)],
            entity_id=str(existing.pk),
        )
    if operation == "delete":
        if existing is None:
            return _Applied(
                result_status="success",
                data={"activityId": None, "externalId": external_id, "deleted": False},
            )
        metrics = {c for c in ACTIVITY_COLUMNS if getattr(existing, c) is not None} & GOAL_METRICS
        activity_id = existing.pk
        changes = audit_changes({c: getattr(existing, c) for c in ACTIVITY_COLUMNS}, {})
        activity_delete(activity=existing)
        goals = goal_progress_update_for_activity(user_id=profile.user_id, metrics=metrics) if metrics else []
        return _Applied(
            result_status="success",
            data={"activityId": activity_id, "externalId": external_id, "deleted": True, "goals": goals},
            changes={"deleted": {"old": activity_id, "new": None}, **changes},
            entity_id=str(activity_id),
        )
    if (
        external_id
        and existing is None
        and deleted_after(
            user_id=profile.user_id,
            entity_type=activity_type,
            external_id=external_id,
            occurred_at=occurred_at,
        )
    ):
        return _Applied(
            result_status="stale",
            data={"activityId": None, "externalId": external_id},
            conflicts=[{**_stale_conflict(event, None), "reason": "deleted_later"}],
        )
    columns = payload_serializer.columns()
    validated = payload_serializer.validated_data
    logged_date = validated.get("date") or timezone.localdate(occurred_at)
    old = {c: getattr(existing, c) for c in ACTIVITY_COLUMNS} if existing else {}
    activity, created = activity_upsert_from_app(
        user=profile,
        existing=existing,
        activity_type=activity_type,
        external_id=external_id,
        occurred_at=occurred_at,
        logged_date=logged_date,
        payload=redact_pii_data(event["payload"]),
        columns=columns,
    )
    metrics = {c for c, v in columns.items() if v is not None} | {c for c, v in old.items() if v is not None}
    metrics &= GOAL_METRICS
    conflicts: list = []
    changes = audit_changes(old, {c: v for c, v in columns.items() if v is not None or c in old})
    if activity_type == ActivityType.WEIGHT_LOG:
        # A weigh-in is also the profile's current weight, unless staff verified that field.
        profile_changes, conflicts, _ = profile_apply_app_event(
            profile=profile, fields={"current_weight_kg": columns["weight_kg"]}, occurred_at=occurred_at
        )
        changes.update({f"profile.{k}": v for k, v in profile_changes.items()})
    goals = goal_progress_update_for_activity(user_id=profile.user_id, metrics=metrics) if metrics else []
    return _Applied(
        result_status="success",
        data={
            "activityId": activity.pk,
            "activityType": activity_type,
            "externalId": external_id,
            "loggedDate": logged_date.isoformat(),
            "created": created,
            "goals": goals,
        },
        changes=changes,
        conflicts=conflicts,
        entity_id=str(activity.pk),
        embed_activity_id=None if activity_type in NOT_EMBEDDED_TYPES else activity.pk,
    )


# --- Outbound ---------------------------------------------------------------------------------------

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


def outbound_event_enqueue(
    *,
    user_id: str,
    entity_type: str,
    operation: str,
    entity_id: str | int,
    data: dict[str, Any],
    origin: str = ActorType.STAFF,
) -> SyncEvent | None:
    """Record a CRM-side change the app must learn and deliver it after commit.

    `origin` is who made the change; changes that came from the app are never echoed back (None).
    Without APP_WEBHOOK_URL the event is recorded as `skipped` (nothing is lost: staff can retry it
    once a URL is configured).
    """
    if origin == ActorType.APP:
        return None
    now = timezone.now()
    webhook_id = f"msg_{uuid.uuid4().hex}"
    body = {
        "type": f"{entity_type}.{operation}",
        "timestamp": now.isoformat(),
        "data": {
            "userId": user_id,
            "entityType": entity_type,
            "operation": operation,
            "entityId": str(entity_id),
            "origin": str(origin),
            **json.loads(json.dumps(redact_pii_data(data), default=str)),
        },
    }
    pending = bool(settings.APP_WEBHOOK_URL)
    event = SyncEvent.objects.create(
        direction=SyncDirection.OUTBOUND,
        user_id=user_id,
        entity_type=entity_type,
        operation=operation,
        external_id=str(entity_id),
        idempotency_key=f"outbound:{webhook_id}",
        request_hash=request_hash_compute(body),
        status=SyncStatus.PENDING if pending else SyncStatus.SKIPPED,
        payload=body,
        webhook_id=webhook_id,
        occurred_at=now,
        next_attempt_at=now if pending else None,
        error="" if pending else "APP_WEBHOOK_URL is not configured.",
    )
    if pending:
        transaction.on_commit(lambda: _delivery_enqueue(event.pk))
    return event


def _delivery_enqueue(event_id: int, countdown: float | None = None) -> None:
    from sync.tasks import sync_event_deliver_task

    try:
        sync_event_deliver_task.apply_async(args=[event_id], countdown=countdown)
    except Exception:  # recorded as pending; `manage.py retry_syncs --stuck` sends it later
        logger.exception("could not enqueue delivery of sync event %s", event_id)


def _post_signed(event: SyncEvent, *, secret: str) -> tuple[int, str]:
    body = json.dumps(event.payload, separators=(",", ":"))
    sent_at = timezone.now()
    signature = Webhook(secret).sign(event.webhook_id, sent_at, body)
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
        if ok:
            event.status, event.processed_at, event.next_attempt_at = SyncStatus.DELIVERED, now, None
        elif event.attempts < MAX_ATTEMPTS and secret:
            retry_in = RETRY_DELAYS_S[event.attempts - 1]
            event.status, event.next_attempt_at = SyncStatus.RETRYING, now + dt.timedelta(seconds=retry_in)
        else:
            event.status, event.next_attempt_at = SyncStatus.DEAD_LETTER, None
        event.error, event.response_status = error, http_status
        event.save(
            update_fields=[
                "status",
                "attempts",
                "error",
                "response_status",
                "processed_at",
                "next_attempt_at",
                "updated_at",
            ]
        )
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
            transaction.on_commit(lambda event_id=event_id: _delivery_enqueue(event_id))
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
        _delivery_enqueue(event_id)
    return len(ids)


# Helpers for the other apps' services: call inside the transaction of the change.


def outbound_goal_changed(*, goal, operation: str, origin: str) -> SyncEvent | None:
    """A goal created/accepted/updated in the CRM (staff, coach) that the app must show."""
    return outbound_event_enqueue(
        user_id=goal.user_id,
        entity_type="goal",
        operation=operation,
        entity_id=goal.pk,
        origin=origin,
        data={
            "goal": {
                "id": goal.pk,
                "externalId": goal.external_id,
                "goalType": goal.goal_type,
                "metric": goal.metric,
                "goalValue": float(goal.goal_value),
                "goalUnit": goal.goal_unit,
                "targetDate": goal.target_date.isoformat() if goal.target_date else None,
                "priority": goal.priority,
                "status": goal.status,
                "progressPct": float(goal.progress_pct),
                "source": goal.source,
            }
        },
    )


def outbound_profile_verified(*, profile: CrmUserProfile, fields: list[str], origin: str = ActorType.STAFF):
    """Staff-verified health-profile fields: the app should show (and stop overwriting) them."""
    values = {name: getattr(profile, name) for name in fields}
    return outbound_event_enqueue(
        user_id=profile.user_id,
        entity_type="profile",
        operation="verified",
        entity_id=profile.user_id,
        origin=origin,
        data={"fields": {k: float(v) if hasattr(v, "as_tuple") else v for k, v in values.items()}},
    )


def outbound_insight_created(*, insight, origin: str = ActorType.AI_ASSISTANT) -> SyncEvent | None:
    return outbound_event_enqueue(
        user_id=insight.user_id,
        entity_type="insight",
        operation="create",
        entity_id=insight.pk,
        origin=origin,
        data={"insight": {"id": insight.pk, "title": insight.title, "body": insight.body}},
    )


__all__ = [
    "MAX_BODY_BYTES",
    "RETRY_DELAYS_S",
    "DeliveryOutcome",
    "WebhookResult",
    "outbound_event_deliver",
    "outbound_event_enqueue",
    "outbound_events_retry",
    "webhook_event_ingest",
]
