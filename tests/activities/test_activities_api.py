"""Activities list, nutrition snapshot, metrics and the churn-risk list."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from activities.models import ActivityType
from tests.factories import FoodLogFactory, GoalFactory, ProfileFactory, days_ago
from tests.support import USER_A

pytestmark = pytest.mark.django_db
BASE_A = f"/api/crm/users/{USER_A}"


def test_activities_newest_first_with_type_filter_and_pagination(client_a, profile_a):
    logs = [FoodLogFactory(user=profile_a, occurred_at=days_ago(n)) for n in (3, 1, 2)]
    water = FoodLogFactory(
        user=profile_a,
        activity_type=ActivityType.WATER_LOG,
        occurred_at=days_ago(0),
        calories_kcal=None,
        protein_g=None,
        carbs_g=None,
        fat_g=None,
        payload={},
        water_ml=500,
    )
    response = client_a.get(f"{BASE_A}/activities", {"limit": 20})
    assert response.status_code == 200
    body = response.json()
    assert [a["id"] for a in body["data"]] == [water.pk, logs[1].pk, logs[2].pk, logs[0].pk]
    assert body["data"][0]["water_ml"] == 500
    assert "embedding" not in body["data"][0]
    food = client_a.get(f"{BASE_A}/activities", {"type": "food_log", "limit": 2}).json()
    assert [a["id"] for a in food["data"]] == [logs[1].pk, logs[2].pk]
    assert food["pagination"] == {"limit": 2, "offset": 0, "count": 3, "nextOffset": 2}
    bad = client_a.get(f"{BASE_A}/activities", {"type": "dance"})
    assert bad.status_code == 400
    assert list(bad.json()["error"]["details"]) == ["type"]


def test_activities_of_unknown_user_is_404(service_client):
    assert service_client.get("/api/crm/users/nobody/activities").status_code == 404


def test_nutrition_snapshot_against_goals(client_a, profile_a):
    today = timezone.localdate()
    now = timezone.now()
    FoodLogFactory(user=profile_a, occurred_at=now, logged_date=today, calories_kcal=600, protein_g=60)
    FoodLogFactory(user=profile_a, occurred_at=now, logged_date=today, calories_kcal=400, protein_g=30)
    yesterday = today - dt.timedelta(days=1)
    FoodLogFactory(user=profile_a, occurred_at=days_ago(1), logged_date=yesterday, calories_kcal=2000, protein_g=90)
    FoodLogFactory(user=profile_a, occurred_at=days_ago(9), logged_date=today - dt.timedelta(days=9))
    goal = GoalFactory(user=profile_a, metric="protein_g", goal_value=Decimal(120))
    GoalFactory(user=profile_a, metric="calories_kcal", goal_unit="kcal", goal_value=Decimal(2000), status="suggested")

    response = client_a.get(f"{BASE_A}/nutrition-snapshot")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["daysLogged"] == 2
    assert data["today"]["calories_kcal"] == 1000.0
    assert data["today"]["protein_g"] == 90.0
    assert data["averages7d"]["calories_kcal"] == 1500.0
    assert data["averages7d"]["protein_g"] == 90.0
    assert data["goals"] == {
        "protein_g": {"goalId": goal.pk, "target": 120.0, "unit": "g", "todayPct": 75.0, "average7dPct": 75.0}
    }


def test_nutrition_snapshot_with_no_logs(client_a, profile_a):
    data = client_a.get(f"{BASE_A}/nutrition-snapshot").json()["data"]
    assert data["daysLogged"] == 0
    assert data["averages7d"]["calories_kcal"] is None
    assert data["today"]["calories_kcal"] == 0.0
    assert data["goals"] == {}


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
    assert set(data["churnFactors"]["components"]) == {"inactivity", "low_volume", "declining", "irregular"}
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
    assert data["churnRisk"] == 1.0


def test_churn_risk_list_threshold_order_and_pagination(service_client):
    ProfileFactory(user_id="low", churn_risk=Decimal("0.2"))
    ProfileFactory(user_id="mid", churn_risk=Decimal("0.75"))
    ProfileFactory(user_id="high", churn_risk=Decimal("0.95"))
    ProfileFactory(user_id="edge", churn_risk=Decimal("0.7"))
    response = service_client.get("/api/crm/churn-risk")
    assert response.status_code == 200
    body = response.json()
    assert [row["user_id"] for row in body["data"]] == ["high", "mid", "edge"]
    assert body["data"][0]["churn_risk"] == 0.95
    assert body["pagination"]["count"] == 3
    low = service_client.get("/api/crm/churn-risk", {"min_risk": "0.1", "limit": 2}).json()
    assert [row["user_id"] for row in low["data"]] == ["high", "mid"]
    assert low["pagination"] == {"limit": 2, "offset": 0, "count": 4, "nextOffset": 2}
    bad = service_client.get("/api/crm/churn-risk", {"min_risk": "1.5"})
    assert bad.status_code == 400
    assert list(bad.json()["error"]["details"]) == ["min_risk"]


def test_churn_risk_and_audit_log_are_403_for_end_users(client_a, profile_a):
    for url in ("/api/crm/churn-risk", f"/api/crm/audit-log/{USER_A}"):
        response = client_a.get(url)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
