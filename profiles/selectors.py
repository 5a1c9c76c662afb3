"""Reads of the profiles app."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, QuerySet

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


def churn_risk_list(*, min_risk: Decimal) -> QuerySet[CrmUserProfile]:
    """Users at or above `min_risk`, highest risk first (ties: longest inactive, then user id)."""
    return CrmUserProfile.objects.filter(churn_risk__gte=min_risk).order_by(
        "-churn_risk", F("last_active_at").asc(nulls_first=True), "user_id"
    )


def profile_tier_payload(*, profile: CrmUserProfile, previous_tier: str) -> dict:
    """An engagement tier change as the app sees it in outbound events."""
    return {"engagementTier": profile.engagement_tier, "previousTier": previous_tier}


def profile_consent_payload(*, profile: CrmUserProfile) -> dict:
    """Both consent flags and when each was last set, as the app sees them in outbound events."""
    ai_at, marketing_at = profile.consent_ai_processing_at, profile.consent_marketing_at
    return {
        "consentAiProcessing": profile.consent_ai_processing,
        "consentAiProcessingAt": ai_at.isoformat() if ai_at else None,
        "consentMarketing": profile.consent_marketing,
        "consentMarketingAt": marketing_at.isoformat() if marketing_at else None,
    }
