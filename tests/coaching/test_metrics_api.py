"""GET /users/<id>/metrics: activity counts, streak, engagement tier and churn risk."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import FoodLogFactory, days_ago
from tests.support import USER_A

pytestmark = pytest.mark.django_db
BASE_A = f"/api/crm/users/{USER_A}"


def test_metrics_counts_streak_tier_and_churn(client_a, profile_a):
    for n in (0, 1, 2, 4, 20):
        FoodLogFactory(user=profile_a, occurred_at=days_ago(n), logged_date=timezone.localdate(days_ago(n)))
    response = client_a.get(f"{BASE_A}/metrics")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["activities7d"] == 4
    assert data["activities30d"] == 5
    assert data["currentStreakDays"] == 3
    assert data["engagementTier"] == "bronze"
    assert data["engagementTierSuggested"] == "bronze"  # silver needs 12 activities in 30 days
    assert 0 <= data["churnRisk"] <= 1
    assert data["churnBand"] in {"low", "medium", "high"}
    # No model trained yet: the fallback rule, driven by the time since the last log in usual gaps.
    assert data["churnFactors"]["model"] == "fallback_rule"
    assert data["churnFactors"]["daysInactive"] == 0
    assert [d["feature"] for d in data["churnFactors"]["drivers"]] == ["recency_ratio"]
    assert data["lastActiveAt"] is not None


def test_metrics_streak_counts_from_yesterday_when_today_is_empty(client_a, profile_a):
    for n in (1, 2):
        FoodLogFactory(user=profile_a, occurred_at=days_ago(n), logged_date=timezone.localdate(days_ago(n)))
    assert client_a.get(f"{BASE_A}/metrics").json()["data"]["currentStreakDays"] == 2


def test_metrics_for_inactive_user(client_a, profile_a):
    data = client_a.get(f"{BASE_A}/metrics").json()["data"]
    assert data["activities30d"] == 0
    assert data["currentStreakDays"] == 0
    assert data["lastActiveAt"] is None
    # No log in the whole history window (120 days, a weekly rhythm assumed): r / (r + 2), r = 120 / 7.
    assert data["churnRisk"] == round((120 / 7) / (120 / 7 + 2), 3)
    assert data["churnBand"] == "high"
