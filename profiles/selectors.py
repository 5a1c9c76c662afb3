"""Reads of the profiles app."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, QuerySet

from profiles.models import CrmUserProfile

CHURN_HIGH_RISK = Decimal("0.7")


def profile_get(*, user_id: str) -> CrmUserProfile | None:
    return CrmUserProfile.objects.filter(user_id=user_id).first()


def churn_risk_list(*, min_risk: Decimal) -> QuerySet[CrmUserProfile]:
    """Users at or above `min_risk`, highest risk first (ties: longest inactive, then user id)."""
    return CrmUserProfile.objects.filter(churn_risk__gte=min_risk).order_by(
        "-churn_risk", F("last_active_at").asc(nulls_first=True), "user_id"
    )
