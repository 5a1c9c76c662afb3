"""Writes of the profiles app."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from activities.selectors import engagement_signals_for_users
from compliance.models import ActorType
from compliance.services import audit_record
from profiles.models import CrmUserProfile
from profiles.selectors import churn_risk_estimate

CHURN_BATCH_SIZE = 2000


def churn_assess_users(
    *, user_ids: list[str] | None = None, now: dt.datetime | None = None, actor_type: str = ActorType.SYSTEM
) -> int:
    """Recompute churn_risk and its factors for the given users (all users when None), in id batches.

    Writes one audit row per batch rather than per user: the change is a system recomputation and
    the per-user factors are kept on the profile itself.
    """
    now = now or timezone.now()
    profiles = CrmUserProfile.objects.order_by("id").only("id", "user_id", "last_active_at")
    if user_ids is not None:
        profiles = profiles.filter(user_id__in=user_ids)
    assessed = 0
    last_id = 0
    while True:
        batch = list(profiles.filter(id__gt=last_id)[:CHURN_BATCH_SIZE])
        if not batch:
            return assessed
        last_id = batch[-1].id
        signals = engagement_signals_for_users(user_ids=[p.user_id for p in batch], now=now)
        for profile in batch:
            profile.churn_risk, profile.churn_factors = churn_risk_estimate(
                signals=signals[profile.user_id], last_active_at=profile.last_active_at, now=now
            )
            profile.churn_assessed_at = now
        with transaction.atomic():
            CrmUserProfile.objects.bulk_update(batch, ["churn_risk", "churn_factors", "churn_assessed_at"])
            audit_record(
                actor_type=actor_type,
                actor_id="churn_assessment",
                action="profile.churn_assessed",
                entity_type="profile",
                changes={"users": len(batch)},
            )
        assessed += len(batch)


# --- App events (sync engine) ---------------------------------------------------------------------


def profile_get_or_create_for_app(*, user_id: str) -> tuple[CrmUserProfile, bool]:
    """The profile of `user_id`, locked for the caller's transaction; created (and audited) if new.

    The lock serialises events of one user, so ordering checks and goal streaks see a stable state.
    """
    profile = CrmUserProfile.objects.select_for_update().filter(user_id=user_id).first()
    if profile is not None:
        return profile, False
    # get_or_create copes with a concurrent first event for the same user (unique user_id).
    profile, created = CrmUserProfile.objects.get_or_create(user_id=user_id)
    if not created:
        profile = CrmUserProfile.objects.select_for_update().get(user_id=user_id)
    if created:
        audit_record(
            actor_type=ActorType.APP,
            actor_id="app_webhook",
            action="profile.created",
            entity_type="profile",
            entity_id=profile.pk,
            user_id=user_id,
            changes={"user_id": {"old": None, "new": user_id}},
        )
    return profile, created


def _provenance_time(entry: dict | None) -> dt.datetime | None:
    if not entry or not entry.get("updated_at"):
        return None
    return dt.datetime.fromisoformat(entry["updated_at"])


def profile_apply_app_event(
    *, profile: CrmUserProfile, fields: dict, occurred_at: dt.datetime
) -> tuple[dict, list[dict], list[str]]:
    """Apply app-sent profile fields under the conflict rules; returns (changes, conflicts, stale_fields).

    - A health-profile field that staff verified (field_provenance[f]["verified"]) keeps the CRM
      value: the CRM wins, the conflict is returned for the sync event.
    - A field last written by an event newer than `occurred_at` is not overwritten (stale).
    - Email and phone are stored only as keyed hashes.
    The caller holds the profile row lock (profile_get_or_create_for_app).
    """
    from decimal import Decimal

    from compliance.pii import hash_identifier
    from compliance.services import audit_changes
    from profiles.models import HEALTH_PROFILE_FIELDS

    provenance = dict(profile.field_provenance or {})
    updates: dict = {}
    conflicts: list[dict] = []
    stale: list[str] = []
    for name, value in fields.items():
        if name in ("email", "phone"):
            name, value = f"{name}_hash", (hash_identifier(value, kind=name) if value else "")
        elif value is None and name in ("activity_level", "primary_goal"):
            value = ""
        entry = provenance.get(name)
        current = getattr(profile, name)
        if name in HEALTH_PROFILE_FIELDS and entry and entry.get("verified"):
            if current != value:
                conflicts.append(
                    {
                        "field": name,
                        "appValue": float(value) if isinstance(value, Decimal) else value,
                        "crmValue": float(current) if isinstance(current, Decimal) else current,
                        "resolution": "crm_wins",
                        "reason": "verified_by_staff",
                    }
                )
            continue
        stored_at = _provenance_time(entry)
        if stored_at is not None and occurred_at < stored_at:
            stale.append(name)
            conflicts.append(
                {
                    "field": name,
                    "resolution": "kept_newer",
                    "reason": "stale",
                    "storedUpdatedAt": entry["updated_at"],
                }
            )
            continue
        updates[name] = value
        provenance[name] = {"source": "app", "verified": False, "updated_at": occurred_at.isoformat()}
    for name in [n for n in updates if n.startswith("consent_")]:
        updates[f"{name}_at"] = occurred_at
    old = {name: getattr(profile, name) for name in updates}
    for name, value in updates.items():
        setattr(profile, name, value)
    profile.field_provenance = provenance
    if updates:
        profile.save(update_fields=[*updates, "field_provenance", "updated_at"])
    changes = audit_changes(old, updates)
    return changes, conflicts, stale


def profile_touch_last_active(*, profile: CrmUserProfile, occurred_at: dt.datetime) -> bool:
    """Move last_active_at forward (never back: an old event replayed late is not new activity)."""
    if profile.last_active_at is not None and profile.last_active_at >= occurred_at:
        return False
    profile.last_active_at = occurred_at
    CrmUserProfile.objects.filter(pk=profile.pk).update(last_active_at=occurred_at)
    return True
