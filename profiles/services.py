"""Writes of the profiles app."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status

from compliance.pii import hash_identifier
from compliance.selectors import user_is_erased
from compliance.services import audit_changes, audit_record
from profiles.error_codes import ProfileErrorCode
from profiles.models import HEALTH_PROFILE_FIELDS, CrmUserProfile
from profiles.queries import last_active_statement, profile_locked_get
from profiles.selectors import profile_consent_payload, profile_lifecycle_payload, profile_tier_payload
from profiles.signals import ai_consent_withdrawn_send
from sync.app_events import APP_ACTOR_ID, AppliedEvent
from sync.outbox import outbox_record, outbox_record_many
from yahealthy_crm.actors import ActorType
from yahealthy_crm.errors import ApplicationError, ErrorCode
from yahealthy_crm.sql import Statement

# Fields a REST caller may write (engagement_tier: service and staff only, checked by the view).
PROFILE_WRITABLE_FIELDS = (
    *HEALTH_PROFILE_FIELDS,
    "engagement_tier",
    "consent_ai_processing",
    "consent_marketing",
)
CONSENT_TIMESTAMPS = {
    "consent_ai_processing": "consent_ai_processing_at",
    "consent_marketing": "consent_marketing_at",
}
_AUDITED_FIELDS = (*PROFILE_WRITABLE_FIELDS, *CONSENT_TIMESTAMPS.values(), "email_hash", "phone_hash")


def _snapshot(profile: CrmUserProfile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in _AUDITED_FIELDS}


def _apply_fields(
    *, profile: CrmUserProfile, fields: dict[str, Any], actor_type: str, now: dt.datetime, creating: bool
) -> None:
    """Set `fields`, stamp consent changes and record health-field provenance.

    Staff writes of a health-profile field mark it CRM-verified (the sync engine then keeps it over
    app updates); writes by anyone else record their source, unverified, when the value changes.
    """
    for name, value in fields.items():
        if name not in PROFILE_WRITABLE_FIELDS:
            raise ValueError(f"{name} is not a writable profile field")
        old = getattr(profile, name)
        setattr(profile, name, value)
        if name in CONSENT_TIMESTAMPS and (creating or old != value):
            setattr(profile, CONSENT_TIMESTAMPS[name], now)
        if name in HEALTH_PROFILE_FIELDS and (actor_type == ActorType.STAFF or creating or old != value):
            profile.field_provenance = {
                **profile.field_provenance,
                name: {
                    "source": actor_type,
                    "verified": actor_type == ActorType.STAFF,
                    "updated_at": now.isoformat(),
                },
            }
    if creating:
        for stamp in CONSENT_TIMESTAMPS.values():
            if getattr(profile, stamp) is None:
                setattr(profile, stamp, now)  # the default consent state also has a time


def profile_create(
    *,
    user_id: str,
    actor_type: str,
    actor_id: str,
    fields: dict[str, Any] | None = None,
    email: str = "",
    phone: str = "",
) -> CrmUserProfile:
    """Create a user's CRM profile (409 when it exists or the id was erased), audited."""
    if user_is_erased(user_id=user_id):
        raise ApplicationError(
            "This user id was erased (GDPR) and cannot be used again.",
            code=ProfileErrorCode.USER_ERASED,
            status_code=status.HTTP_409_CONFLICT,
        )
    now = timezone.now()
    profile = CrmUserProfile(user_id=user_id)
    _apply_fields(profile=profile, fields=fields or {}, actor_type=actor_type, now=now, creating=True)
    if email:
        profile.email_hash = hash_identifier(email, kind="email")
    if phone:
        profile.phone_hash = hash_identifier(phone, kind="phone")
    try:
        with transaction.atomic():
            profile.save(force_insert=True)
            audit_record(
                actor_type=actor_type,
                actor_id=actor_id,
                action="profile.created",
                entity_type="profile",
                entity_id=profile.pk,
                user_id=user_id,
                changes=audit_changes({}, _snapshot(profile)),
            )
    except IntegrityError:
        if CrmUserProfile.objects.filter(user_id=user_id).exists():
            raise ApplicationError(
                "A profile with this user_id already exists.",
                code=ProfileErrorCode.USER_EXISTS,
                status_code=status.HTTP_409_CONFLICT,
                details={"user_id": ["A profile with this user_id already exists."]},
            ) from None
        raise
    return profile


def profile_update(*, user_id: str, actor_type: str, actor_id: str, fields: dict[str, Any]) -> CrmUserProfile:
    """Partial update of a profile (404 when missing), audited with old -> new per changed field."""
    now = timezone.now()
    with transaction.atomic():
        profile = CrmUserProfile.objects.select_for_update().filter(user_id=user_id).first()
        if profile is None:
            raise ApplicationError("User not found.", code=ErrorCode.NOT_FOUND, status_code=404)
        locked = sorted(
            name
            for name, value in fields.items()
            if actor_type != ActorType.STAFF
            and name in HEALTH_PROFILE_FIELDS
            and profile.field_provenance.get(name, {}).get("verified")
            and getattr(profile, name) != value
        )
        if locked:
            # Seed sync policy: CRM-verified health data wins over the app and the user.
            raise ApplicationError(
                "These health fields were verified by CRM staff and can only be changed by staff.",
                code=ProfileErrorCode.FIELD_VERIFIED,
                status_code=status.HTTP_409_CONFLICT,
                details={name: ["Verified by CRM staff."] for name in locked},
            )
        before = _snapshot(profile)
        provenance_before = profile.field_provenance
        _apply_fields(profile=profile, fields=fields, actor_type=actor_type, now=now, creating=False)
        changes = audit_changes(before, _snapshot(profile))
        if not changes and profile.field_provenance == provenance_before:
            return profile
        profile.save()
        verified = sorted(
            name
            for name in fields
            if name in HEALTH_PROFILE_FIELDS and profile.field_provenance.get(name, {}).get("verified")
        )
        if verified and actor_type == ActorType.STAFF:
            changes["verified_fields"] = {"old": None, "new": verified}
        audit_record(
            actor_type=actor_type,
            actor_id=actor_id,
            action="profile.updated",
            entity_type="profile",
            entity_id=profile.pk,
            user_id=user_id,
            changes=changes,
        )
        if verified and actor_type == ActorType.STAFF:
            profile_verified_outbox_record(profile=profile, fields=verified, origin=actor_type)
        if "engagement_tier" in changes:
            profile_tier_changed_outbox_record(
                profile=profile, previous_tier=before["engagement_tier"], origin=actor_type
            )
        if any(name in changes for name in CONSENT_TIMESTAMPS):
            profile_consent_changed_outbox_record(profile=profile, origin=actor_type)
        if before["consent_ai_processing"] and not profile.consent_ai_processing:
            ai_consent_withdrawn_send(user_id=user_id)
    return profile


# --- App events (sync engine) ---------------------------------------------------------------------


def profile_get_or_create_for_app(*, user_id: str) -> tuple[CrmUserProfile, bool]:
    """The profile of `user_id`, locked for the caller's transaction; created (and audited) if new.

    The lock serialises events of one user, so ordering checks and goal streaks see a stable state.
    """
    # Raw SQL: every inbound webhook takes this lock; the ORM's query building would double its cost.
    profile = profile_locked_get(user_id=user_id)
    if profile is not None:
        return profile, False
    # get_or_create copes with a concurrent first event for the same user (unique user_id).
    profile, created = CrmUserProfile.objects.get_or_create(user_id=user_id)
    if not created:
        profile = CrmUserProfile.objects.select_for_update().get(user_id=user_id)
    if created:
        audit_record(
            actor_type=ActorType.APP,
            actor_id=APP_ACTOR_ID,
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


def profile_fields_apply_from_app(
    *, profile: CrmUserProfile, fields: dict, occurred_at: dt.datetime
) -> tuple[dict, list[dict], list[str]]:
    """Apply app-sent profile fields under the conflict rules; returns (changes, conflicts, stale_fields).

    - A health-profile field that staff verified (field_provenance[f]["verified"]) keeps the CRM
      value: the CRM wins, the conflict is returned for the sync event.
    - A field last written by an event newer than `occurred_at` is not overwritten (stale).
    - Email and phone are stored only as keyed hashes.
    The caller holds the profile row lock (profile_get_or_create_for_app).
    """
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
        if old.get("consent_ai_processing") and not profile.consent_ai_processing:
            ai_consent_withdrawn_send(user_id=profile.user_id)
    changes = audit_changes(old, updates)
    return changes, conflicts, stale


def profile_last_active_touch(*, profile: CrmUserProfile, occurred_at: dt.datetime) -> Statement | None:
    """Move last_active_at forward (never back: an old event replayed late is not new activity).

    Returns the UPDATE for the caller to run with its other writes (None: nothing to move).
    """
    if profile.last_active_at is not None and profile.last_active_at >= occurred_at:
        return None
    profile.last_active_at = occurred_at
    return last_active_statement(profile_id=profile.pk, occurred_at=occurred_at)


def profile_apply_app_event(*, profile: CrmUserProfile, fields: dict, occurred_at: dt.datetime) -> AppliedEvent:
    """Apply an app's profile event; stale when every field it sends was written by a newer event."""
    changes, conflicts, stale = profile_fields_apply_from_app(profile=profile, fields=fields, occurred_at=occurred_at)
    sent = {f"{name}_hash" if name in ("email", "phone") else name for name in fields}
    all_stale = bool(fields) and set(stale) >= sent
    return AppliedEvent(
        result_status="stale" if all_stale else "success",
        data={"userId": profile.user_id, "updatedFields": sorted(changes)},
        changes=changes,
        conflicts=conflicts,
        entity_id=str(profile.pk),
    )


def _json_number(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def profile_verified_outbox_record(*, profile: CrmUserProfile, fields: list[str], origin: str = ActorType.STAFF):
    """Staff-verified health-profile fields: the app should show (and stop overwriting) them."""
    return outbox_record(
        user_id=profile.user_id,
        entity_type="profile",
        operation="verified",
        entity_id=profile.user_id,
        origin=origin,
        data={"fields": {name: _json_number(getattr(profile, name)) for name in fields}},
    )


def profile_tier_changed_outbox_record(*, profile: CrmUserProfile, previous_tier: str, origin: str):
    """A new engagement tier (staff, coach or a job): the app shows the tier and its perks."""
    return outbox_record(
        user_id=profile.user_id,
        entity_type="profile",
        operation="tier_changed",
        entity_id=profile.user_id,
        origin=origin,
        data=profile_tier_payload(profile=profile, previous_tier=previous_tier),
    )


def profiles_tier_changed_outbox_record_many(*, changes: list[tuple[CrmUserProfile, str]], origin: str):
    """`profile_tier_changed_outbox_record` for a bulk recomputation: `changes` are (profile, previous tier)."""
    return outbox_record_many(
        entity_type="profile",
        operation="tier_changed",
        origin=origin,
        records=[
            (profile.user_id, profile.user_id, profile_tier_payload(profile=profile, previous_tier=previous))
            for profile, previous in changes
        ],
    )


def profiles_lifecycle_changed_outbox_record_many(*, changes: list[tuple[CrmUserProfile, str]], origin: str):
    """Lifecycle stages recomputed by the daily job: `changes` are (profile, previous stage)."""
    return outbox_record_many(
        entity_type="profile",
        operation="stage_changed",  # max 16 characters (crm_sync_events.operation)
        origin=origin,
        records=[
            (profile.user_id, profile.user_id, profile_lifecycle_payload(profile=profile, previous_stage=previous))
            for profile, previous in changes
        ],
    )


def profile_consent_changed_outbox_record(*, profile: CrmUserProfile, origin: str):
    """Consent changed in the CRM (user, staff): the app must honour both flags from now on."""
    return outbox_record(
        user_id=profile.user_id,
        entity_type="profile",
        operation="consent_changed",
        entity_id=profile.user_id,
        origin=origin,
        data=profile_consent_payload(profile=profile),
    )


def profile_segment_export_record(*, actor_type: str, actor_id: str, segment: dict[str, Any], rows: int) -> None:
    """Audit a CSV export of a segment of users: who exported which filters and how many rows. The
    export holds contacts only as the keyed hashes stored (profiles.selectors.PROFILE_EXPORT_COLUMNS)."""
    audit_record(
        actor_type=actor_type,
        actor_id=actor_id,
        action="profiles.exported",
        entity_type="profile_segment",
        changes={"filters": segment, "rows": rows, "format": "csv"},
    )
