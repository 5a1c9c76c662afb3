"""What an app event's apply function returns to the sync engine (shared by the domains and sync).

Each domain applies the events of its own entity (staleness, deletes, ownership rules included)
and answers with an `AppliedEvent`; the sync engine stores it on the event and answers the app.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from yahealthy_crm.sql import Statement

APP_ACTOR_ID = "app_webhook"


@dataclass
class AppliedEvent:
    result_status: str  # success | stale
    data: dict
    changes: dict = field(default_factory=dict)
    conflicts: list = field(default_factory=list)
    entity_id: str = ""
    # Activities only: the goal metrics whose progress the event may change (None: none to recompute).
    goal_metrics: set[str] | None = None
    embed: bool = False  # a new or changed activity text to embed after commit
    # Writes the domain left to the sync engine, which runs them in one statement with its own
    # bookkeeping (or earlier, before anything reads their rows).
    deferred_writes: list[Statement] = field(default_factory=list)
    # Applied on a presumption (an activity create presumed new, its context not read): a scalar read
    # that must be true on the snapshot the deferred writes start from, else the caller rolls the
    # transaction back and applies the event again without presuming.
    presumption: Statement | None = None


def stale_conflict(*, entity_type: str, external_id: str, stored_at: dt.datetime | None) -> dict:
    """The conflict recorded when an event is older than what the CRM already applied."""
    return {
        "entity": entity_type,
        "externalId": external_id,
        "resolution": "kept_newer",
        "reason": "stale",
        "storedUpdatedAt": stored_at.isoformat() if stored_at else None,
    }
