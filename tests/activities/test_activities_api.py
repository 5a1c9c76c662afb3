"""GET /users/<id>/activities: newest first, type filter, pagination, scope."""

from __future__ import annotations

import pytest

from activities.models import ActivityType
from tests.factories import FoodLogFactory, days_ago
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
    response = service_client.get("/api/crm/users/nobody/activities")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
