"""Reads of the profiles app."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from profiles.models import CrmUserProfile
from yahealthy_crm.permissions import Caller, not_found_error, user_scope_check

CHURN_HIGH_RISK = Decimal("0.7")


def profile_get(*, user_id: str) -> CrmUserProfile | None:
    return CrmUserProfile.objects.filter(user_id=user_id).first()


def profile_for_caller_get(*, caller: Caller, user_id: str) -> CrmUserProfile:
    """The profile of `user_id` if `caller` may see it; 404 `not_found` for another user's id (never 403,
    so an end user cannot learn whether it exists) and for an unknown or erased id."""
    user_scope_check(caller=caller, user_id=user_id)
    profile = profile_get(user_id=user_id)
    if profile is None:
        raise not_found_error("User not found.")
    return profile


def churn_risk_list(
    *, min_risk: Decimal, lifecycle_stage: str | None = None, churn_band: str | None = None
) -> QuerySet[CrmUserProfile]:
    """Users at or above `min_risk`, highest risk first (ties: longest inactive, then user id),
    optionally only those in a lifecycle stage and/or a stored churn band."""
    profiles = CrmUserProfile.objects.filter(churn_risk__gte=min_risk)
    if lifecycle_stage:
        profiles = profiles.filter(lifecycle_stage=lifecycle_stage)
    if churn_band:
        profiles = profiles.filter(churn_band=churn_band)
    return profiles.order_by("-churn_risk", F("last_active_at").asc(nulls_first=True), "user_id")


# --- Segments: the one definition of the staff's user filters (admin list, CSV export, GET /users) ------

INACTIVE_DAYS_CHOICES = (7, 14, 30)


@dataclass(frozen=True)
class ProfileSegment:
    """A segment of users: every field left None does not narrow the list."""

    churn_band: str | None = None
    engagement_tier: str | None = None
    lifecycle_stage: str | None = None
    primary_goal: str | None = None
    inactive_days: int | None = None
    consent_ai_processing: bool | None = None
    consent_marketing: bool | None = None
    user_id_contains: str | None = None


def profiles_inactive_for(*, days: int, now: dt.datetime | None = None) -> Q:
    """No activity in the last `days` days: last active before then, or never active and created before
    then (a user created yesterday is not "inactive for 30 days")."""
    since = (now or timezone.now()) - dt.timedelta(days=days)
    return Q(last_active_at__lt=since) | Q(last_active_at__isnull=True, created_at__lt=since)


def profile_segment_filter(
    queryset: QuerySet[CrmUserProfile] | None = None, *, segment: ProfileSegment, now: dt.datetime | None = None
) -> QuerySet[CrmUserProfile]:
    """`queryset` (all profiles by default) narrowed to `segment`."""
    profiles = CrmUserProfile.objects.all() if queryset is None else queryset
    exact = {
        "churn_band": segment.churn_band,
        "engagement_tier": segment.engagement_tier,
        "lifecycle_stage": segment.lifecycle_stage,
        "primary_goal": segment.primary_goal,
        "consent_ai_processing": segment.consent_ai_processing,
        "consent_marketing": segment.consent_marketing,
    }
    profiles = profiles.filter(**{field: value for field, value in exact.items() if value is not None})
    if segment.inactive_days is not None:
        profiles = profiles.filter(profiles_inactive_for(days=segment.inactive_days, now=now))
    if segment.user_id_contains:
        profiles = profiles.filter(user_id__icontains=segment.user_id_contains)
    return profiles


# The columns of a segment's CSV export: contacts only as the keyed hashes stored, never raw.
PROFILE_EXPORT_COLUMNS = (
    "user_id",
    "engagement_tier",
    "lifecycle_stage",
    "churn_risk",
    "churn_band",
    "churn_assessed_at",
    "primary_goal",
    "activity_level",
    "age",
    "height_cm",
    "current_weight_kg",
    "last_active_at",
    "consent_ai_processing",
    "consent_marketing",
    "email_hash",
    "phone_hash",
    "created_at",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such a cell
# is written with a leading apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def profile_export_rows(queryset: QuerySet[CrmUserProfile], *, chunk_size: int = 2000):
    """The CSV rows (header first) of `queryset`, read in chunks (a server-side cursor): memory stays flat
    whatever the size of the segment."""
    yield list(PROFILE_EXPORT_COLUMNS)
    for row in queryset.values_list(*PROFILE_EXPORT_COLUMNS).iterator(chunk_size=chunk_size):
        yield [_csv_cell(value) for value in row]


def ai_consent_granted(*, user_id_ref: str = "user_id") -> Exists:
    """EXISTS (the profile of the row's `user_id_ref` has AI consent): the one filter of every AI
    processing over other apps' rows (embedding sweeps, backfills). Used as `.filter(ai_consent_granted())`
    so the caller's own index still drives the scan and the profile is probed by its unique user_id."""
    return Exists(CrmUserProfile.objects.filter(user_id=OuterRef(user_id_ref), consent_ai_processing=True))


def profile_tier_payload(*, profile: CrmUserProfile, previous_tier: str) -> dict:
    """An engagement tier change as the app sees it in outbound events."""
    return {"engagementTier": profile.engagement_tier, "previousTier": previous_tier}


def profile_lifecycle_payload(*, profile: CrmUserProfile, previous_stage: str) -> dict:
    """A lifecycle stage change as the app sees it in outbound events."""
    changed_at = profile.lifecycle_changed_at
    return {
        "lifecycleStage": profile.lifecycle_stage,
        "previousStage": previous_stage,
        "lifecycleChangedAt": changed_at.isoformat() if changed_at else None,
    }


def profile_consent_payload(*, profile: CrmUserProfile) -> dict:
    """Both consent flags and when each was last set, as the app sees them in outbound events."""
    ai_at, marketing_at = profile.consent_ai_processing_at, profile.consent_marketing_at
    return {
        "consentAiProcessing": profile.consent_ai_processing,
        "consentAiProcessingAt": ai_at.isoformat() if ai_at else None,
        "consentMarketing": profile.consent_marketing,
        "consentMarketingAt": marketing_at.isoformat() if marketing_at else None,
    }
