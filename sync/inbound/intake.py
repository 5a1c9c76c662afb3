"""Inbound app events: signed, idempotent, ordered; each applied by the domain that owns its entity.

Inbound, in order: size -> Standard Webhooks signature -> JSON -> rate limit -> GDPR tombstone ->
validation -> idempotency claim -> apply. The claim is an INSERT into `crm_sync_events` under the
unique `idempotency_key`, in the same transaction as the change and the stored response: a parallel
duplicate waits on that insert and then replays the committed response, so an event applies once.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, transaction
from django.utils import timezone
from psycopg import errors as psycopg_errors
from rest_framework import serializers, status
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from activities.services import activity_apply_app_event, activity_embeddings_schedule, embedding_sweep_flag_read
from compliance.pii import redact_pii, redact_pii_data
from compliance.queries import audit_insert_statement
from compliance.selectors import user_id_hash, user_is_erased
from compliance.services import audit_row_build
from goals.services import (
    GoalMetricMismatchError,
    GoalNotFoundError,
    goal_apply_app_event,
    goal_progress_update_for_activity,
)
from profiles.services import profile_apply_app_event, profile_get_or_create_for_app, profile_last_active_touch
from sync.app_events import APP_ACTOR_ID, AppliedEvent
from sync.error_codes import SyncErrorCode
from sync.inbound.queries import RATE_COUNT_FROM, event_claim, event_finish_statement
from sync.inbound.schemas import ACTIVITY_ENTITY_TYPES, event_validator_get
from sync.models import SyncDirection, SyncEvent, SyncStatus
from sync.outbox import request_hash_compute
from yahealthy_crm.actors import ActorType
from yahealthy_crm.errors import ApplicationError, ErrorCode, RateLimitedError
from yahealthy_crm.json_input import JsonInputError, json_loads_strict
from yahealthy_crm.ratelimit import WEBHOOK_RATE, RateCountInSql, rate_limit_count_in_sql, rate_limit_enforce
from yahealthy_crm.sql import statements_run

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
WEBHOOK_RATE_GROUP = "sync.webhook"  # the batch intake counts in the same counters: one limit for both
# A duplicate waits this long for the first request with its key to commit, then answers 409.
IN_FLIGHT_WAIT = "5s"


@dataclass(frozen=True)
class WebhookResult:
    status_code: int
    body: dict | str  # str: the answer's JSON text, as stored for replays (rendered once, not three times)
    replayed: bool = False


def response_json_dumps(body: dict) -> str:
    """JSON text as DRF's JSONRenderer writes it (compact, UTF-8, no NaN; U+2028/9 escaped)."""
    text = json.dumps(body, default=str, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


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

    CRM_WEBHOOK_SECRET may hold several secrets separated by spaces (a rotation): any one verifies.

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
    header_map = dict(headers.items())
    # During a rotation CRM_WEBHOOK_SECRET holds the new and the old secret: either one verifies.
    failure: Exception | None = None
    for secret in settings.CRM_WEBHOOK_SECRET.split():
        try:
            _webhook(secret).verify(text, header_map, json_parse=False)
            return
        except (WebhookVerificationError, binascii.Error, ValueError) as exc:
            failure = exc
    reason = str(failure) if isinstance(failure, WebhookVerificationError) else "Malformed signature header"
    raise ApplicationError(
        f"Webhook signature verification failed: {reason}. Sign the request per the Standard "
        "Webhooks spec (webhook-id, webhook-timestamp within 5 minutes, webhook-signature).",
        code=SyncErrorCode.SIGNATURE_INVALID,
        status_code=status.HTTP_401_UNAUTHORIZED,
    ) from failure


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _user_erased_error() -> ApplicationError:
    return ApplicationError(
        "This user was erased under GDPR; the CRM no longer accepts their data.",
        code=SyncErrorCode.USER_ERASED,
        status_code=status.HTTP_410_GONE,
    )


def _event_reject(
    *, data: dict, request_hash: str, error: ApplicationError, idempotency_key: str = ""
) -> ApplicationError:
    """Record a rejected event (status failed) and return the error to raise.

    Rejections do not reserve the idempotency key: the app can fix the event and send it again.
    An erased user's event is answered 410 and nothing of it is stored.
    """
    user_id = data.get("userId")
    if isinstance(user_id, str) and user_id and user_is_erased(user_id=user_id):
        return _user_erased_error()
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


def webhook_content_type_check(*, content_type: str) -> None:
    """415 unless the body is declared `application/json` (UTF-8, the only charset JSON has)."""
    media_type, _, parameters = (content_type or "").partition(";")
    charset = parameters.strip().lower().removeprefix("charset=").strip('"') if parameters.strip() else "utf-8"
    if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise ApplicationError(
            f"Send the event as Content-Type: application/json (UTF-8), not '{content_type[:80]}'.",
            code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        )


def _body_parse(body: bytes) -> dict:
    """The JSON object of the body (400 malformed_json otherwise)."""
    try:
        data = json_loads_strict(body)
    except JsonInputError as exc:
        raise ApplicationError(
            str(exc),
            code=SyncErrorCode.MALFORMED_JSON,
            status_code=status.HTTP_400_BAD_REQUEST,
        ) from exc
    if not isinstance(data, dict):
        raise ApplicationError(
            "The body must be a JSON object.",
            code=SyncErrorCode.MALFORMED_JSON,
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    return data


def _idempotency_key_default(*, event: dict, data: dict, headers: Mapping[str, str]) -> str:
    """The seed's formula; without occurredAt the signed message id is the stable identity."""
    if event["occurredAt"]:
        return f"{event['entityType']}:{event['externalId']}:{event['operation']}:{data['occurredAt']}"
    return _webhook_message_key(headers)


def _webhook_message_key(headers: Mapping[str, str]) -> str:
    """The signed message id as a key ("" without one): unique per message, the same on redelivery."""
    webhook_id = headers.get("webhook-id", "")
    return f"webhook:{webhook_id}" if webhook_id else ""


def webhook_event_ingest(
    *, body: bytes, headers: Mapping[str, str], idempotency_key: str = "", request=None
) -> WebhookResult:
    """Verify, validate and apply one app event; the 202 body (or the replayed one) to answer."""
    webhook_body_size_check(size=len(body))
    webhook_signature_verify(body=body, headers=headers)
    data = _body_parse(body)
    user_id = data.get("userId")
    rate_key = user_id[:64] if request is not None and isinstance(user_id, str) and user_id else ""
    # With the counters in PostgreSQL a valid event is counted by its claim statement (one round trip
    # less); an event refused before its claim is counted on its own, before its answer. Either way
    # the limit is checked first: an event over it is answered 429, whatever else is wrong with it.
    rate_count = _webhook_rate_count(rate_key)
    if rate_key and rate_count is None:
        _webhook_rate_limit_enforce(rate_key)
    # An erased user is answered 410 by the claim (valid events) or by _event_reject (invalid ones).

    request_hash = request_hash_compute(data)
    try:
        event, payload_serializer = event_validator_get().validate(
            data, derived_external_id=idempotency_key or _webhook_message_key(headers)
        )
    except serializers.ValidationError as exc:
        if rate_count is not None:
            _webhook_rate_limit_enforce(rate_key)
        raise _event_reject(
            data=data,
            request_hash=request_hash,
            error=_validation_error(exc.detail),
            idempotency_key=idempotency_key,
        ) from exc
    occurred_at = event["occurredAt"] or _signed_time(headers)
    idempotency_key = idempotency_key or _idempotency_key_default(event=event, data=data, headers=headers)
    if len(idempotency_key) > 255:
        if rate_count is not None:
            _webhook_rate_limit_enforce(rate_key)
        raise _event_reject(
            data=data,
            request_hash=request_hash,
            error=_validation_error({"Idempotency-Key": ["At most 255 characters."]}),
        )
    claim_and_apply = {
        "data": data,
        "event": event,
        "payload_serializer": payload_serializer,
        "occurred_at": occurred_at,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "rate_count": rate_count,
        "rate_key": rate_key,
    }
    try:
        try:
            return _event_claim_and_apply(**claim_and_apply, presume_new=_presumable_new(event))
        except _PresumptionFailed:
            # Rolled back, claim and rate-limit count included: apply again, reading what is stored.
            return _event_claim_and_apply(**claim_and_apply, presume_new=False)
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
    except GoalMetricMismatchError as exc:
        raise _event_reject(
            data=data,
            request_hash=request_hash,
            idempotency_key=idempotency_key,
            error=_validation_error({"payload": {"metric": [str(exc)]}}),
        ) from exc


def _webhook_rate_count(rate_key: str) -> RateCountInSql | None:
    """The event's rate-limit count as part of its claim statement (None: no key, or Redis counters)."""
    if not rate_key:
        return None
    return rate_limit_count_in_sql(
        group=WEBHOOK_RATE_GROUP, key_value=rate_key, rate=WEBHOOK_RATE, from_sql=RATE_COUNT_FROM
    )


def _webhook_rate_limit_enforce(rate_key: str) -> None:
    """Count the event on its own; 429 when its user is over the limit."""
    rate_limit_enforce(None, group=WEBHOOK_RATE_GROUP, key_value=rate_key, rate=WEBHOOK_RATE)


def _lock_wait_error(exc: OperationalError) -> ApplicationError:
    """409 for a lock not granted within IN_FLIGHT_WAIT (anything else is re-raised by the caller)."""
    return ApplicationError(
        "A request with this Idempotency-Key, or another change to this user's data (e.g. a GDPR "
        "erase), is still being processed; retry shortly.",
        code=SyncErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT,
        status_code=status.HTTP_409_CONFLICT,
    )


def _is_lock_timeout(exc: OperationalError) -> bool:
    return isinstance(exc.__cause__, psycopg_errors.LockNotAvailable)


class _PresumptionFailed(Exception):
    """What an apply presumed (an activity create's external id new; a batch's keys new) was not so
    when its writes ran: its transaction (or savepoint) is rolled back and the general path taken."""


def _presumable_new(event: dict) -> bool:
    """An activity create is applied presuming its external id new (`activity_apply_app_event`):
    one statement less per event; a create of a stored id costs a rolled-back attempt instead."""
    return event["entityType"] in ACTIVITY_ENTITY_TYPES and event["operation"] == "create"


def _event_claim_and_apply(
    *, data, event, payload_serializer, occurred_at, idempotency_key, request_hash, rate_count, rate_key, presume_new
) -> WebhookResult:
    """Claim, apply and finish in one transaction. For an activity create of a known user with no
    active goals on its metrics: the claim (with the rate-limit count and the new activity's id)
    and one final write, which also checks that the activity is new (`presume_new`)."""
    refusal: ApplicationError | None = None
    try:
        with transaction.atomic():
            claim = event_claim(
                user_id=event["userId"],
                user_id_hash=user_id_hash(user_id=event["userId"]),
                entity_type=event["entityType"],
                operation=event["operation"],
                external_id=event["externalId"],
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                payload=redact_pii_data(data),
                occurred_at=occurred_at,
                lock_wait=IN_FLIGHT_WAIT,
                rate_count=rate_count,
                reserve_activity_id=presume_new,
            )
            # Refusals leave the block normally: the transaction commits the rate-limit count (and
            # nothing else: the claim inserted no row).
            if claim.rate_grant is not None and not claim.rate_grant.allowed:
                refusal = RateLimitedError(retry_after_s=claim.rate_grant.retry_after_s)
            elif claim.user_erased:
                refusal = _user_erased_error()
            elif claim.event_id is None:
                return _event_replay(idempotency_key=idempotency_key, request_hash=request_hash)
            else:
                profile = claim.profile or profile_get_or_create_for_app(user_id=event["userId"])[0]
                applied = _event_apply(
                    profile=profile,
                    event=event,
                    payload_serializer=payload_serializer,
                    occurred_at=occurred_at,
                    active_goal_metrics=claim.active_goal_metrics,
                    presumed_new_id=claim.activity_id,
                )
                response, sweep_queued = _event_finish(
                    event=event, event_id=claim.event_id, idempotency_key=idempotency_key, applied=applied
                )
                if applied.embed and not sweep_queued:
                    transaction.on_commit(activity_embeddings_schedule)
    except Exception as exc:
        if isinstance(exc, _PresumptionFailed):
            raise  # the caller applies the event again, and counts it then
        # Rolled back, the claim's rate-limit count with it: count the event on its own (a 429 comes
        # first, as it would have before the claim).
        if rate_count is not None:
            _rate_limit_recount(rate_key, exc)
        # lock_timeout (IN_FLIGHT_WAIT) is in force from the claim to the commit.
        if isinstance(exc, OperationalError) and _is_lock_timeout(exc):
            raise _lock_wait_error(exc) from exc
        raise
    if refusal is not None:
        raise refusal
    return WebhookResult(status.HTTP_202_ACCEPTED, response)


def _rate_limit_recount(rate_key: str, failure: Exception) -> None:
    try:
        _webhook_rate_limit_enforce(rate_key)
    except DatabaseError:
        # The database is the failure (the answer is 503): the original error answers.
        logger.warning("could not count a failed webhook event against its rate limit", exc_info=True)
    except RateLimitedError as refused:
        raise refused from failure


def app_event_audit_row(*, event: dict, applied: AppliedEvent, event_id: int):
    """The audit row of an applied app event (actor `app`), for the single and the batch intake."""
    return audit_row_build(
        actor_type=ActorType.APP,
        actor_id=APP_ACTOR_ID,
        action=f"{event['entityType']}.{event['operation']}",
        entity_type=event["entityType"],
        entity_id=applied.entity_id,
        user_id=event["userId"],
        changes={**applied.changes, "syncEventId": event_id},
    )


def _event_finish(*, event: dict, event_id: int, idempotency_key: str, applied: AppliedEvent) -> tuple[str, bool]:
    """One statement: the domain's deferred writes, the audit row and the stored 202 response. Returns
    the response's JSON, and whether an embedding sweep is queued that will read this transaction's
    rows (the same statement read its flag; False: not known, check after the commit)."""
    applied.data["syncEventId"] = event_id
    applied.data["conflicts"] = applied.conflicts
    response = {
        "status": "accepted",
        "idempotencyKey": idempotency_key,
        "result": {"status": applied.result_status, "data": applied.data},
    }
    response_json = response_json_dumps(response)
    writes = [
        *applied.deferred_writes,
        event_finish_statement(
            event_id=event_id,
            outcome=SyncStatus.SUCCESS if applied.result_status == "success" else SyncStatus.STALE,
            conflicts=applied.conflicts,
            response_json=response_json,
        ),
    ]
    if applied.result_status == "success":
        writes.append(audit_insert_statement(app_event_audit_row(event=event, applied=applied, event_id=event_id)))
    flag = _writes_run(applied, writes, read=embedding_sweep_flag_read() if applied.embed else None)
    return response_json, flag is not None


def _writes_run(applied: AppliedEvent, writes: list, *, read=None):
    """The writes in one statement, with the applied event's presumption checked on the snapshot they
    start from (then it has held: later statements see these rows) and `read`, whose value returns."""
    reads = tuple(statement for statement in (applied.presumption, read) if statement is not None)
    values = list(statements_run(writes, reads=reads))
    if applied.presumption is not None:
        applied.presumption = None
        if not values.pop(0):
            raise _PresumptionFailed
    return values[0] if read is not None else None


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


def _event_apply(
    *,
    profile,
    event: dict,
    payload_serializer,
    occurred_at,
    active_goal_metrics: frozenset[str],
    presumed_new_id: int | None = None,
) -> AppliedEvent:
    """Dispatch to the domain that owns the entity; activities then refresh the goals they feed."""
    entity_type = event["entityType"]
    if entity_type == "profile":
        return profile_apply_app_event(
            profile=profile, fields=payload_serializer.profile_fields(), occurred_at=occurred_at
        )
    if entity_type == "goal":
        applied = goal_apply_app_event(
            user=profile,
            operation=event["operation"],
            external_id=event["externalId"],
            data=dict(payload_serializer.validated_data) if payload_serializer is not None else {},
            occurred_at=occurred_at,
        )
    elif entity_type in ACTIVITY_ENTITY_TYPES:
        is_delete = event["operation"] == "delete"
        applied = activity_apply_app_event(
            profile=profile,
            activity_type=entity_type,
            operation=event["operation"],
            external_id=event["externalId"],
            occurred_at=occurred_at,
            columns={} if is_delete else payload_serializer.columns(),
            logged_date=None if is_delete else payload_serializer.validated_data.get("date"),
            payload=event["payload"],
            presumed_new_id=presumed_new_id,
        )
        if applied.goal_metrics is not None:
            applied.data["goals"] = []
            if applied.goal_metrics & active_goal_metrics:
                # Progress is recomputed from the stored activities: the new row must be there first.
                _writes_run(applied, applied.deferred_writes)
                applied.deferred_writes = []
                applied.data["goals"] = goal_progress_update_for_activity(
                    user_id=profile.user_id, metrics=applied.goal_metrics
                )
    else:  # the envelope serializer already refused it
        raise AssertionError(entity_type)
    if applied.result_status == "success":
        touch = profile_last_active_touch(profile=profile, occurred_at=occurred_at)
        if touch is not None:
            applied.deferred_writes.append(touch)
    return applied
