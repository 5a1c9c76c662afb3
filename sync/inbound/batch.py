"""Batch intake of app events (`POST /api/crm/webhooks/app-events`): one signed request, up to 500 events.

Each event is decided under exactly the rules of the single-event webhook (sync.inbound.intake):
rate limit, tombstone, envelope and payload validation, idempotency, ordering, ownership. The
request as a whole fails only when its envelope does (size, signature, JSON, `events`); every event
gets its own result, in input order, and a bad event never fails its neighbours.

Applied set-based: the common events (activity creates and updates other than weigh-ins) cost a
constant number of statements per batch, whatever the number of events:
claim (1 INSERT) -> missing profiles (1 INSERT) -> profile locks (1 SELECT ... FOR UPDATE) ->
stored activities (1 SELECT) -> "deleted later" facts (1 SELECT) -> new activities (1 INSERT) ->
replaced activities (1 UPDATE) -> active goals? (1 SELECT) -> last_active_at (1 UPDATE) ->
audit (1 INSERT) -> outcomes and stored responses (1 UPDATE); plus 1 SELECT for tombstones before,
1 INSERT for rejected events and 1 SELECT for stored responses of replayed keys when there are any.
Goal progress is recomputed per user who has active goals on the metrics the batch touched (after
all of the batch's events: each event's `goals` shows the state after the batch). Profile and goal
events, activity deletes (and every event of an activity the batch also deletes) and weigh-ins
(which also set the profile's weight under its provenance rules) go through the domains' apply
functions one by one, in a savepoint each, inside the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from psycopg import errors as psycopg_errors
from rest_framework import serializers, status

from activities.app_event_rules import (
    activity_deleted_later_applied,
    activity_event_deleted_later,
    activity_event_is_stale,
    activity_stale_applied,
    activity_success_applied,
    activity_values_from_app,
)
from activities.models import ACTIVITY_COLUMNS, ActivityType
from activities.services import activity_apply_app_event, activity_embeddings_schedule
from compliance.pii import redact_pii, redact_pii_data
from compliance.selectors import user_id_hash
from compliance.services import audit_row_build
from goals.services import (
    GoalMetricMismatchError,
    GoalNotFoundError,
    goal_apply_app_event,
    goal_progress_update_for_activity,
)
from profiles.queries import profiles_lock
from profiles.services import profile_apply_app_event
from sync.app_events import APP_ACTOR_ID, AppliedEvent
from sync.error_codes import SyncErrorCode
from sync.inbound.batch_queries import (
    activities_by_external_id,
    activities_deleted_at,
    activities_insert,
    activities_replace,
    audit_rows_insert,
    profiles_by_user_id,
    profiles_insert_missing,
    profiles_last_active_forward,
    sync_events_by_key,
    sync_events_claim,
    sync_events_delete,
    sync_events_finish,
    sync_events_insert,
    sync_events_insert_finished,
    sync_events_new_keys_reserve,
    tombstones_and_profiles_find,
    users_active_goal_metrics,
)
from sync.inbound.intake import (
    IN_FLIGHT_WAIT,
    WEBHOOK_RATE_GROUP,
    _body_parse,
    _idempotency_key_default,
    _is_lock_timeout,
    _PresumptionFailed,
    _signed_time,
    _user_erased_error,
    _validation_error,
    app_event_audit_row,
    webhook_signature_verify,
)
from sync.inbound.queries import claim_status
from sync.inbound.schemas import ACTIVITY_ENTITY_TYPES, EventValidator, event_validator_get
from sync.models import SyncDirection, SyncStatus
from sync.outbox import request_hash_compute
from yahealthy_crm.actors import ActorType
from yahealthy_crm.errors import ApplicationError, RateLimitedError
from yahealthy_crm.ratelimit import WEBHOOK_RATE, rate_limit_take_many
from yahealthy_crm.sql import statements_run

MAX_BATCH_EVENTS = 500
MAX_BATCH_BODY_BYTES = 1024 * 1024
# Activity events applied set-based; weigh-ins also move the profile's weight (per event).
SET_BASED_TYPES = ACTIVITY_ENTITY_TYPES - {ActivityType.WEIGHT_LOG}
SET_BASED_OPERATIONS = ("create", "update")
TOO_LARGE_MESSAGE = (
    f"A batch may carry at most {MAX_BATCH_EVENTS} events in a body of at most "
    f"{MAX_BATCH_BODY_BYTES // (1024 * 1024)} MiB ({MAX_BATCH_BODY_BYTES} bytes); split it."
)


@dataclass(frozen=True)
class BatchResult:
    status_code: int
    body: dict
    retry_after_s: int = 0  # > 0 when some events were rate limited


@dataclass
class _Item:
    """One event of the batch on its way through the pipeline."""

    index: int
    data: dict | None  # the event as sent, without its idempotencyKey (None: not an object)
    key: str = ""
    user_id: str = ""
    user_id_hash: str = ""  # the tombstone hash of user_id, once checked
    profile_seen: bool = False  # user_id had a profile at the tombstone check (before the transaction)
    event: dict = field(default_factory=dict)  # validated envelope
    payload_serializer: Any = None
    occurred_at: dt.datetime | None = None
    request_hash: str = ""
    result: dict | None = None  # the item of the answer, once decided
    event_id: int | None = None
    applied: AppliedEvent | None = None
    rejection: ApplicationError | None = None  # a domain refused it after the claim (goal events)
    activity: dict | None = None  # the row a set-based event wrote (its "id" known after the INSERT)

    @property
    def entity_key(self) -> tuple[str, str, str]:
        return (self.event["userId"], self.event["entityType"], self.event["externalId"])


def batch_body_size_check(*, size: int) -> None:
    if size > MAX_BATCH_BODY_BYTES:
        raise ApplicationError(
            TOO_LARGE_MESSAGE,
            code=SyncErrorCode.PAYLOAD_TOO_LARGE,
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )


def _error_item(item: _Item, error: ApplicationError) -> dict:
    return {
        "status": "error",
        "idempotencyKey": item.key or None,
        "statusCode": error.status_code,
        "error": {"code": error.code, "message": error.message, "details": error.details},
    }


def _rejected_row(item: _Item, error: ApplicationError) -> dict:
    """The `failed` event a 422 leaves (as the single endpoint's `_event_reject`): the key stays free."""
    data = item.data or {}
    body = {"status": "error", "error": {"code": error.code, "message": error.message, "details": error.details}}

    def text(value: Any, limit: int) -> str:
        return value[:limit] if isinstance(value, str) else ""

    return {
        "direction": SyncDirection.INBOUND,
        "user_id": text(data.get("userId"), 64),
        "entity_type": text(data.get("entityType"), 32),
        "operation": text(data.get("operation"), 16),
        "external_id": text(data.get("externalId"), 128),
        "idempotency_key": f"rejected:{uuid.uuid4().hex}",
        "request_hash": item.request_hash,
        "status": SyncStatus.FAILED,
        "attempts": 1,
        "error": redact_pii(json.dumps({"idempotencyKey": item.key, **body["error"]}, default=str)),
        "payload": redact_pii_data(data),
        "response_body": redact_pii_data(json.loads(json.dumps(body, default=str))),
        "response_status": error.status_code,
        "processed_at": timezone.now(),
    }


# --- Envelope -------------------------------------------------------------------------------------


def _events_parse(body: bytes) -> list:
    data = _body_parse(body)
    events = data.get("events")
    if not isinstance(events, list):
        raise _validation_error(
            {"events": ["Required: a list of events (each an app event with an optional idempotencyKey)."]},
            "The batch must be a JSON object with an `events` list.",
        )
    if len(events) > MAX_BATCH_EVENTS:
        raise ApplicationError(
            TOO_LARGE_MESSAGE,
            code=SyncErrorCode.PAYLOAD_TOO_LARGE,
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            details={"events": len(events), "maxEvents": MAX_BATCH_EVENTS, "maxBytes": MAX_BATCH_BODY_BYTES},
        )
    return events


def webhook_batch_ingest(*, body: bytes, headers: Mapping[str, str], request=None) -> BatchResult:
    """Verify the batch, decide and apply each event; the 200 body with one result per event."""
    batch_body_size_check(size=len(body))
    webhook_signature_verify(body=body, headers=headers)
    events = _events_parse(body)
    webhook_id = headers.get("webhook-id", "")
    items = [_item_start(index, raw) for index, raw in enumerate(events)]
    retry_after = _rate_limit(items, request=request)
    _tombstones_check(items)
    validator = event_validator_get()
    signed_at = _signed_time(headers)  # the time of the events without occurredAt
    rejected = [
        _validate(item, validator=validator, headers=headers, webhook_id=webhook_id, signed_at=signed_at)
        for item in items
        if item.result is None
    ]
    claimers, twins = _claimers_and_twins(items)
    if claimers or any(rejected):
        try:
            with transaction.atomic():
                sync_events_insert(events=[row for row in rejected if row is not None])
                if claimers:
                    _claim_and_apply(claimers)
        except OperationalError as exc:
            # lock_timeout (IN_FLIGHT_WAIT) is in force from the claim to the commit.
            if not _is_lock_timeout(exc):
                raise
            raise ApplicationError(
                "Another request holds one of these idempotency keys, or one of these users' rows (e.g. a "
                f"GDPR erase), and has not committed within {IN_FLIGHT_WAIT}; nothing of this batch was "
                "applied. Retry shortly.",
                code=SyncErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT,
                status_code=status.HTTP_409_CONFLICT,
            ) from exc
    for twin, first in twins:
        twin.result = _twin_result(twin, first)
    results = [item.result for item in items]
    return BatchResult(status.HTTP_200_OK, _answer(results), retry_after_s=retry_after)


def _answer(results: list[dict]) -> dict:
    accepted = [r for r in results if r["status"] == "accepted"]
    return {
        "status": "processed",
        "counts": {
            "events": len(results),
            "accepted": len(accepted),
            "replayed": sum(1 for r in accepted if r.get("replayed")),
            "rejected": len(results) - len(accepted),
        },
        "results": results,
    }


def _item_start(index: int, raw: Any) -> _Item:
    if not isinstance(raw, dict):
        item = _Item(index=index, data=None)
        item.result = _error_item(item, _validation_error({"event": ["Each event must be a JSON object."]}))
        return item
    data = {name: value for name, value in raw.items() if name != "idempotencyKey"}
    item = _Item(index=index, data=data, request_hash=request_hash_compute(data))
    key = raw.get("idempotencyKey")
    if key is not None and not isinstance(key, str):
        item.result = _error_item(item, _validation_error({"idempotencyKey": ["Must be a string."]}))
    item.key = key.strip() if isinstance(key, str) else ""
    user_id = data.get("userId")
    item.user_id = user_id[:64] if isinstance(user_id, str) else ""
    return item


def _rate_limit(items: list[_Item], *, request) -> int:
    """100 events/min per user, counted per event on the single endpoint's counter; returns Retry-After."""
    if request is None:
        return 0
    by_user: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        if item.user_id:  # as the single endpoint: every event naming a user counts, valid or not
            by_user[item.user_id].append(item)
    longest = 0
    grants = rate_limit_take_many(
        group=WEBHOOK_RATE_GROUP,
        rate=WEBHOOK_RATE,
        counts={user_id: len(events) for user_id, events in by_user.items()},
    )
    for user_id, user_items in by_user.items():
        grant = grants[user_id]
        for item in user_items[grant.allowed :]:  # the user's events past the limit, in input order
            if item.result is None:
                item.result = _error_item(item, RateLimitedError(retry_after_s=grant.retry_after_s))
                longest = max(longest, grant.retry_after_s)
    return longest


def _tombstones_check(items: list[_Item]) -> None:
    """Events of GDPR-erased users are refused (410 class) and nothing of them is stored; notes which
    users have a profile already (`_apply_claimed` creates only the others')."""
    hashes = {
        item.user_id: user_id_hash(user_id=item.user_id) for item in items if item.result is None and item.user_id
    }
    if not hashes:
        return
    erased, with_profile = tombstones_and_profiles_find(user_id_hashes=hashes)
    for item in items:
        if item.result is None and item.user_id:
            item.user_id_hash = hashes[item.user_id]
            item.profile_seen = item.user_id in with_profile
            if item.user_id_hash in erased:
                item.result = _error_item(item, _user_erased_error())


def _validate(
    item: _Item, *, validator: EventValidator, headers: Mapping[str, str], webhook_id: str, signed_at: dt.datetime
) -> dict | None:
    """Envelope and payload as the single endpoint checks them; returns the failed row to record."""
    message_key = f"webhook:{webhook_id}:{item.index}" if webhook_id else ""
    try:
        event, serializer = validator.validate(item.data, derived_external_id=item.key or message_key)
    except serializers.ValidationError as exc:
        return _reject(item, _validation_error(exc.detail))
    if not item.key:
        item.key = (
            _idempotency_key_default(event=event, data=item.data, headers=headers)
            if event["occurredAt"]
            else message_key
        )
    if len(item.key) > 255:
        return _reject(item, _validation_error({"idempotencyKey": ["At most 255 characters."]}))
    item.event, item.payload_serializer = event, serializer
    item.occurred_at = event["occurredAt"] or signed_at
    return None


def _reject(item: _Item, error: ApplicationError) -> dict:
    item.result = _error_item(item, error)
    return _rejected_row(item, error)


def _claimers_and_twins(items: list[_Item]) -> tuple[list[_Item], list[tuple[_Item, _Item]]]:
    """The first event (input order) of each key claims it; a later one with its key is its twin."""
    first: dict[str, _Item] = {}
    twins = []
    for item in items:
        if item.result is not None:
            continue
        if item.key in first:
            twins.append((item, first[item.key]))
        else:
            first[item.key] = item
    return list(first.values()), twins


def _twin_result(twin: _Item, first: _Item) -> dict:
    """The same key twice in one batch: a replay of the first, or `idempotency_key_reused`."""
    if twin.request_hash != first.request_hash:
        return _error_item(twin, _key_reused(twin.key, first.event_id))
    if first.result["status"] == "accepted":
        return {**first.result, "replayed": True}
    return first.result


def _key_reused(key: str, event_id: int | None) -> ApplicationError:
    return ApplicationError(
        "This Idempotency-Key was already used with a different request body.",
        code=SyncErrorCode.IDEMPOTENCY_KEY_REUSED,
        status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        details={"idempotencyKey": key, "syncEventId": event_id},
    )


# --- Claim and apply (one transaction) ------------------------------------------------------------


# A batch whose events are all set-based (activity creates and updates) and whose keys are all new,
# as nearly every batch a sender sends once is, is applied presuming so: ids reserved up front and
# each event's row written once, finished, instead of claimed and then updated (a row update per
# event, which finds no room on the claim's page: not HOT). A key found stored at the end (a twin
# request committed meanwhile, or one that holds it uncommitted) rolls the attempt back and the batch
# takes the general path, which replays it. The final COPY waits for such a key only briefly: this
# transaction locks its users' profiles before the keys, the general path keys before profiles.
PRESUMED_KEY_WAIT = "200ms"


def _claim_and_apply(claimers: list[_Item]) -> None:
    if all(_set_based_kind(item) for item in claimers):
        try:
            with transaction.atomic():  # a savepoint: a failed presumption undoes only this attempt
                if _apply_presumed_new(claimers):
                    return
        except _PresumptionFailed:
            pass
        for item in claimers:
            _item_reset(item)
    claimed = sync_events_claim(events=[_claim_row(item) for item in claimers], lock_timeout=IN_FLIGHT_WAIT)
    new = [item for item in claimers if item.key in claimed]
    _replays([item for item in claimers if item.key not in claimed])
    if not new:
        return
    for item in new:
        item.event_id = claimed[item.key]
    _apply_claimed(new)


def _apply_presumed_new(claimers: list[_Item]) -> bool:
    """Apply the batch presuming every key new; False (nothing done) when one is stored already."""
    ids = sync_events_new_keys_reserve(keys=[item.key for item in claimers], lock_timeout=IN_FLIGHT_WAIT)
    if ids is None:
        return False
    for item, event_id in zip(claimers, ids, strict=True):
        item.event_id = event_id
    _apply_claimed(claimers, presumed_new=True)
    return True


def _item_reset(item: _Item) -> None:
    item.event_id = item.applied = item.rejection = item.activity = item.result = None


def _claim_row(item: _Item) -> dict:
    return {
        "direction": SyncDirection.INBOUND,
        "user_id": item.event["userId"],
        "entity_type": item.event["entityType"],
        "operation": item.event["operation"],
        "external_id": item.event["externalId"],
        "idempotency_key": item.key,
        "request_hash": item.request_hash,
        "status": claim_status(operation=item.event["operation"]),
        "attempts": 1,
        "payload": redact_pii_data(item.data),
        "occurred_at": item.occurred_at,
    }


def _apply_claimed(new: list[_Item], *, presumed_new: bool = False) -> None:
    """Profiles, then each event in order, then the outcomes (`presumed_new`: rows not stored yet)."""
    user_ids = sorted({item.event["userId"] for item in new})
    # Only users without a profile at the tombstone check need one created (the steady state: none, no
    # statement). A profile seen then and missing at the lock was erased meanwhile (an erase deletes
    # the profile, and its tombstone keeps it from coming back): answered 410 below, as the INSERT's
    # own tombstone check would have.
    seen = {item.event["userId"] for item in new if item.profile_seen}
    known = {item.user_id: item.user_id_hash for item in new if item.user_id_hash}  # from the tombstone check
    missing = {
        user_id: known.get(user_id) or user_id_hash(user_id=user_id) for user_id in user_ids if user_id not in seen
    }
    created = profiles_insert_missing(user_id_hashes=missing) if missing else {}
    new = _erased_meanwhile(new, profiles_lock(user_ids=user_ids), stored=not presumed_new)
    if not new:
        return
    # Per user in occurredAt order (input order for ties), as if each had arrived on its own.
    ordered = sorted(new, key=lambda item: (item.event["userId"], item.occurred_at, item.index))
    per_event_keys = {item.entity_key for item in ordered if not _set_based_kind(item)}
    set_based, per_event = [], []
    for item in ordered:
        if _set_based_kind(item) and item.entity_key not in per_event_keys:
            set_based.append(item)
        else:
            per_event.append(item)
    if per_event:
        profiles = profiles_by_user_id(user_ids=sorted({item.event["userId"] for item in per_event}))
        for item in per_event:
            _apply_one(item, profiles[item.event["userId"]])
    _apply_activities(set_based)
    _goal_progress(ordered)
    _finish(new, created=created, presumed_new=presumed_new)


def _erased_meanwhile(items: list[_Item], locked: set[str], *, stored: bool) -> list[_Item]:
    """A user without a profile once the rows are locked was erased after the tombstone check (the
    erase deletes the profile and leaves a tombstone): their events answer 410 and store nothing
    (`stored`: their claimed rows are removed)."""
    gone = [item for item in items if item.event["userId"] not in locked]
    if gone:
        if stored:
            sync_events_delete(ids=[item.event_id for item in gone])
        for item in gone:
            item.result = _error_item(item, _user_erased_error())
    return [item for item in items if item.event["userId"] in locked]


def _set_based_kind(item: _Item) -> bool:
    return item.event["entityType"] in SET_BASED_TYPES and item.event["operation"] in SET_BASED_OPERATIONS


def _replays(items: list[_Item]) -> None:
    """Keys stored by earlier requests: the stored first response (replayed), or why not."""
    if not items:
        return
    stored = sync_events_by_key(keys=[item.key for item in items])
    for item in items:
        row = stored[item.key]
        item.event_id = row.pk
        if row.request_hash != item.request_hash:
            item.result = _error_item(item, _key_reused(item.key, row.pk))
        elif row.status == SyncStatus.PROCESSING or row.response_body is None:
            item.result = _error_item(
                item,
                ApplicationError(
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                    code=SyncErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT,
                    status_code=status.HTTP_409_CONFLICT,
                ),
            )
        else:
            item.result = {**row.response_body, "replayed": True}


def _apply_one(item: _Item, profile) -> None:
    """A less common event through its domain's apply function, in a savepoint of its own."""
    event, serializer = item.event, item.payload_serializer
    try:
        with transaction.atomic():
            if event["entityType"] == "profile":
                applied = profile_apply_app_event(
                    profile=profile, fields=serializer.profile_fields(), occurred_at=item.occurred_at
                )
            elif event["entityType"] == "goal":
                applied = goal_apply_app_event(
                    user=profile,
                    operation=event["operation"],
                    external_id=event["externalId"],
                    data=dict(serializer.validated_data) if serializer is not None else {},
                    occurred_at=item.occurred_at,
                )
            else:
                is_delete = event["operation"] == "delete"
                applied = activity_apply_app_event(
                    profile=profile,
                    activity_type=event["entityType"],
                    operation=event["operation"],
                    external_id=event["externalId"],
                    occurred_at=item.occurred_at,
                    columns={} if is_delete else serializer.columns(),
                    logged_date=None if is_delete else serializer.validated_data.get("date"),
                    payload=event["payload"],
                )
            # Writes the domain left to its caller: run now, later events of the batch may read their rows.
            statements_run(applied.deferred_writes)
            applied.deferred_writes = []
    except GoalNotFoundError as exc:
        item.rejection = ApplicationError(
            f"No goal with externalId '{exc}' for this user; send a create first.",
            code=SyncErrorCode.ENTITY_NOT_FOUND,
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
            details={"externalId": [f"Unknown goal '{exc}'."]},
        )
        return
    except GoalMetricMismatchError as exc:
        item.rejection = _validation_error({"payload": {"metric": [str(exc)]}})
        return
    item.applied = applied


def _apply_activities(items: list[_Item]) -> None:
    """Activity creates/updates, decided in order against the stored rows read at once, written at once."""
    if not items:
        return
    keys = sorted({item.entity_key for item in items if item.event["externalId"]})
    stored = activities_by_external_id(keys=keys)
    deleted_at = activities_deleted_at(keys=[key for key in keys if key not in stored])
    current: dict[tuple[str, str, str], dict] = dict(stored)
    inserted: list[dict] = []
    replaced: dict[int, dict] = {}  # stored rows an event of the batch overwrites
    tz = timezone.get_current_timezone()  # once, not per event (a context-local lookup)
    for item in items:  # per user in occurredAt order
        event, key = item.event, item.entity_key
        external_id = event["externalId"]
        row = current.get(key) if external_id else None
        if row is not None and activity_event_is_stale(
            stored_at=row["source_updated_at"], occurred_at=item.occurred_at
        ):
            item.applied = activity_stale_applied(
                activity_type=event["entityType"],
                external_id=external_id,
                activity_id=row["id"],
                stored_at=row["source_updated_at"],
            )
            item.activity = row
            continue
        if (
            row is None
            and external_id
            and activity_event_deleted_later(deleted_at=deleted_at.get(key), occurred_at=item.occurred_at)
        ):
            item.applied = activity_deleted_later_applied(activity_type=event["entityType"], external_id=external_id)
            continue
        columns = item.payload_serializer.columns()
        values = activity_values_from_app(
            occurred_at=item.occurred_at,
            logged_date=item.payload_serializer.validated_data.get("date"),
            payload=event["payload"],
            columns=columns,
            tz=tz,
        )
        created = row is None
        old = {} if created else {column: row[column] for column in ACTIVITY_COLUMNS}
        if created:
            row = {"id": None, "user_id": event["userId"], "activity_type": event["entityType"]}
            row["external_id"] = external_id
            inserted.append(row)
            if external_id:
                current[key] = row
        elif row["id"] is not None:
            replaced[row["id"]] = row
        row.update(values)
        item.applied = activity_success_applied(
            activity_type=event["entityType"],
            external_id=external_id,
            logged_date=values["logged_date"],
            created=created,
            old=old,
            columns=columns,
        )
        item.activity = row
    for row, pk in zip(inserted, activities_insert(activities=inserted), strict=True):
        row["id"] = pk
    activities_replace(activities=list(replaced.values()))
    for item in items:
        if item.activity is not None:
            item.applied.data["activityId"] = item.activity["id"]
            item.applied.entity_id = str(item.activity["id"])


def _goal_progress(items: list[_Item]) -> None:
    """Recompute goals once per user with active goals on the metrics the batch touched."""
    touched: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if item.applied is not None and item.applied.goal_metrics is not None:
            touched[item.event["userId"]] |= item.applied.goal_metrics
    metrics = sorted(set().union(*touched.values())) if touched else []
    with_goals = users_active_goal_metrics(user_ids=sorted(touched), metrics=metrics)
    progress = {
        user_id: goal_progress_update_for_activity(user_id=user_id, metrics=touched[user_id] & goal_metrics)
        for user_id, goal_metrics in with_goals.items()
    }
    for item in items:
        applied = item.applied
        if applied is not None and applied.goal_metrics is not None:
            goals = progress.get(item.event["userId"], [])
            applied.data["goals"] = [goal for goal in goals if goal["metric"] in applied.goal_metrics]


def _finish(items: list[_Item], *, created: dict[str, int], presumed_new: bool = False) -> None:
    """Outcomes, stored responses, audit rows and last_active_at of the claimed events: one statement
    each (`presumed_new`: the events' rows are inserted finished, not updated)."""
    audit = [
        audit_row_build(
            actor_type=ActorType.APP,
            actor_id=APP_ACTOR_ID,
            action="profile.created",
            entity_type="profile",
            entity_id=profile_id,
            user_id=user_id,
            changes={"user_id": {"old": None, "new": user_id}},
        )
        for user_id, profile_id in sorted(created.items())
    ]
    outcomes: list[dict] = []
    last_active: dict[str, dt.datetime] = {}
    embed = False
    for item in items:
        if item.rejection is not None:
            error = item.rejection
            item.result = _error_item(item, error)
            outcomes.append({**_rejected_row(item, error), "id": item.event_id})
            continue
        applied, event = item.applied, item.event
        applied.data["syncEventId"] = item.event_id
        applied.data["conflicts"] = applied.conflicts
        response = {
            "status": "accepted",
            "idempotencyKey": item.key,
            "result": {"status": applied.result_status, "data": applied.data},
        }
        conflicts = applied.conflicts
        try:
            # JSON as it is (the common case): answered and stored as it is. orjson checks it about ten
            # times faster than json.dumps (3 % of a batch's Python); what it refuses beyond dates and
            # decimals (non-string keys, integers past 64 bits) takes the round trip.
            orjson.dumps(response, option=orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:  # dates, decimals, ...: as their text, the JSON a replay answers
            response = json.loads(json.dumps(response, default=str))
            conflicts = json.loads(json.dumps(conflicts, default=str))
        item.result = {**response, "replayed": False}
        success = applied.result_status == "success"
        outcomes.append(
            {
                "id": item.event_id,
                "idempotency_key": item.key,
                "status": SyncStatus.SUCCESS if success else SyncStatus.STALE,
                "error": "",
                "conflicts": conflicts,
                "response_body": response,
                "response_status": status.HTTP_202_ACCEPTED,
            }
        )
        if success:
            user_id = event["userId"]
            last_active[user_id] = max(item.occurred_at, last_active.get(user_id, item.occurred_at))
            audit.append(app_event_audit_row(event=event, applied=applied, event_id=item.event_id))
            embed = embed or applied.embed
    profiles_last_active_forward(last_active=last_active)
    audit_rows_insert(rows=audit)
    if presumed_new:
        processed_at = timezone.now()  # one outcome per item, in order
        rows = [
            {**_claim_row(item), **outcome, "processed_at": processed_at}
            for item, outcome in zip(items, outcomes, strict=True)
        ]
        try:
            sync_events_insert_finished(events=rows, processed_at=processed_at, lock_timeout=PRESUMED_KEY_WAIT)
        except IntegrityError as exc:  # a key stored by now (a twin request committed it)
            if not isinstance(exc.__cause__, psycopg_errors.UniqueViolation):
                raise
            raise _PresumptionFailed from exc
        except OperationalError as exc:
            if not _is_lock_timeout(exc):
                raise
            raise _PresumptionFailed from exc
    else:
        sync_events_finish(events=outcomes)
    if embed:
        transaction.on_commit(activity_embeddings_schedule)
