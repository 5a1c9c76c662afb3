"""The rules of applying an app's activity event, as pure functions (no database access).

`activities.services.activity_apply_app_event` applies one event at a time with them; the batch intake
(`sync.inbound.batch`) reads the stored rows of a whole batch at once and decides each event with
these functions, then writes the rows set-based. The rules (same as the single-event path):
- an event older than the stored activity's last applied event is stale (the newer data is kept);
- a create/update of an activity the app deleted with a newer event is stale (`deleted_later`);
- otherwise the app wins: the row takes the event's values (typed columns, PII-redacted payload).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from activities.models import ACTIVITY_COLUMNS, NOT_EMBEDDED_TYPES, ActivitySource
from compliance.pii import redact_pii_data
from compliance.services import audit_changes
from sync.app_events import AppliedEvent, stale_conflict


def activity_event_is_stale(*, stored_at: dt.datetime | None, occurred_at: dt.datetime) -> bool:
    """An event older than the last event applied to the stored activity is not applied."""
    return stored_at is not None and occurred_at < stored_at


def activity_event_deleted_later(*, deleted_at: dt.datetime | None, occurred_at: dt.datetime) -> bool:
    """The app deleted the (not stored) activity with an event newer than this one."""
    return deleted_at is not None and deleted_at > occurred_at


def activity_stale_applied(
    *, activity_type: str, external_id: str, activity_id: int | None, stored_at: dt.datetime | None
) -> AppliedEvent:
    return AppliedEvent(
        result_status="stale",
        data={"activityId": activity_id, "externalId": external_id},
        conflicts=[stale_conflict(entity_type=activity_type, external_id=external_id, stored_at=stored_at)],
        entity_id=str(activity_id),
    )


def activity_deleted_later_applied(*, activity_type: str, external_id: str) -> AppliedEvent:
    return AppliedEvent(
        result_status="stale",
        data={"activityId": None, "externalId": external_id},
        conflicts=[
            {
                **stale_conflict(entity_type=activity_type, external_id=external_id, stored_at=None),
                "reason": "deleted_later",
            }
        ],
    )


def activity_values_from_app(
    *,
    occurred_at: dt.datetime,
    logged_date: dt.date | None,
    payload: dict[str, Any],
    columns: dict[str, Any],
    tz: dt.tzinfo | None = None,
) -> dict[str, Any]:
    """The values an applied app event gives its activity row (a new row or the replaced one).

    `tz`: the current time zone, when the caller looked it up once for many events (a batch)."""
    return {
        "source": ActivitySource.APP,
        "occurred_at": occurred_at,
        "logged_date": logged_date or timezone.localdate(occurred_at, tz),
        "payload": redact_pii_data(payload),
        "source_updated_at": occurred_at,
        "embedding": None,  # recomputed after commit from the new text
        **{column: columns.get(column) for column in ACTIVITY_COLUMNS},
    }


def activity_success_applied(
    *,
    activity_type: str,
    external_id: str,
    logged_date: dt.date,
    created: bool,
    old: dict[str, Any],
    columns: dict[str, Any],
) -> AppliedEvent:
    """The outcome of an applied create/update; `old` holds the replaced row's typed columns ({} if new).

    `data["activityId"]` and `entity_id` are left for the caller, who knows the row's id once written.
    """
    return AppliedEvent(
        result_status="success",
        data={
            "activityId": None,
            "activityType": activity_type,
            "externalId": external_id,
            "loggedDate": logged_date.isoformat(),
            "created": created,
        },
        changes=audit_changes(old, {c: v for c, v in columns.items() if v is not None or c in old}),
        goal_metrics={c for c, v in columns.items() if v is not None} | {c for c, v in old.items() if v is not None},
        embed=activity_type not in NOT_EMBEDDED_TYPES,
    )
