"""Reads of the profiles app."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Exists, F, OuterRef, QuerySet

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
