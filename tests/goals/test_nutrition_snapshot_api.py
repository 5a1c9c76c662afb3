"""GET /users/<id>/nutrition-snapshot: today and 7-day averages against the user's active goals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import FoodLogFactory, GoalFactory, days_ago
from tests.support import USER_A

pytestmark = pytest.mark.django_db
BASE_A = f"/api/crm/users/{USER_A}"


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
