"""Goals: list (active by default), create with validation, progress and status (accept suggestions)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from compliance.models import AuditLog
from goals.models import HealthGoal
from tests.factories import GoalFactory
from tests.support import USER_A

pytestmark = pytest.mark.django_db
GOALS_A = f"/api/crm/users/{USER_A}/goals"


def _future(days: int = 60) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


def test_create_goal_seed_example(client_a, profile_a):
    body = {
        "goal_type": "weight",
        "goal_value": 75,
        "goal_unit": "kg",
        "target_date": _future(),
        "priority": "high",
    }
    response = client_a.post(GOALS_A, body, format="json")
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["goal_type"] == "weight"
    assert data["metric"] == "weight_kg"
    assert data["goal_value"] == 75.0
    assert data["status"] == "active"
    assert data["priority"] == "high"
    assert data["source"] == "user"
    assert data["accepted_at"] is not None
    goal = HealthGoal.objects.get(user_id=USER_A)
    audit = AuditLog.objects.get(entity_type="goal", entity_id=str(goal.pk))
    assert audit.action == "goal.created"
    assert audit.actor_type == "user"
    assert audit.changes["goal_value"] == {"old": None, "new": 75.0}


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (
            {"goal_type": "weight", "goal_value": 75, "goal_unit": "kg", "target_date": "2020-01-01"},
            "target_date",
            "validation_error",
        ),
        ({"goal_type": "mood", "goal_value": 75, "goal_unit": "kg"}, "goal_type", "validation_error"),
        ({"goal_type": "weight", "goal_value": 0, "goal_unit": "kg"}, "goal_value", "validation_error"),
        (
            {"goal_type": "weight", "goal_value": 75, "goal_unit": "kg", "priority": "urgent"},
            "priority",
            "validation_error",
        ),
        (
            {"goal_type": "weight", "goal_value": 75, "goal_unit": "kg", "status": "completed"},
            "status",
            "validation_error",
        ),
        (
            {"goal_type": "weight", "goal_value": 75, "goal_unit": "kg", "progress": 5},
            "progress",
            "validation_error",
        ),
        ({"goal_type": "weight", "goal_value": 75}, "goal_unit", "validation_error"),
        ({"goal_type": "nutrition", "goal_value": 120, "goal_unit": "g"}, "metric", "metric_required"),
        (
            {"goal_type": "weight", "goal_value": 75, "goal_unit": "kg", "metric": "steps"},
            "metric",
            "validation_error",
        ),
    ],
)
def test_create_goal_validation_stores_nothing(service_client, profile_a, body, field, code):
    response = service_client.post(GOALS_A, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    assert list(error["details"]) == [field]
    assert HealthGoal.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_nutrition_goal_with_explicit_metric_and_kcal_inference(service_client, profile_a):
    protein = service_client.post(
        GOALS_A,
        {"goal_type": "nutrition", "goal_value": 120, "goal_unit": "g", "metric": "protein_g"},
        format="json",
    )
    calories = service_client.post(
        GOALS_A, {"goal_type": "nutrition", "goal_value": 2000, "goal_unit": "kcal"}, format="json"
    )
    assert (protein.status_code, calories.status_code) == (201, 201)
    assert protein.json()["data"]["metric"] == "protein_g"
    assert calories.json()["data"]["metric"] == "calories_kcal"
    assert calories.json()["data"]["source"] == "app"


def test_create_goal_for_unknown_user_is_404(service_client):
    response = service_client.post(
        "/api/crm/users/nobody/goals",
        {"goal_type": "weight", "goal_value": 75, "goal_unit": "kg"},
        format="json",
    )
    assert response.status_code == 404
    assert HealthGoal.objects.count() == 0


def test_list_is_active_by_default_newest_first_with_status_filter(client_a, profile_a):
    older = GoalFactory(user=profile_a, status="active")
    newer = GoalFactory(user=profile_a, status="active")
    suggested = GoalFactory(user=profile_a, status="suggested")
    GoalFactory(user=profile_a, status="completed")
    response = client_a.get(GOALS_A)
    assert response.status_code == 200
    body = response.json()
    assert [g["id"] for g in body["data"]] == [newer.pk, older.pk]
    assert body["pagination"] == {"limit": 20, "offset": 0, "count": 2, "nextOffset": None}
    assert [g["id"] for g in client_a.get(GOALS_A, {"status": "suggested"}).json()["data"]] == [suggested.pk]
    assert len(client_a.get(GOALS_A, {"status": "all"}).json()["data"]) == 4
    bad = client_a.get(GOALS_A, {"status": "whatever"})
    assert bad.status_code == 400
    assert list(bad.json()["error"]["details"]) == ["status"]


def test_list_pagination(service_client, profile_a):
    goals = [GoalFactory(user=profile_a) for _ in range(5)]
    page = service_client.get(GOALS_A, {"limit": 2, "offset": 2}).json()
    assert [g["id"] for g in page["data"]] == [goals[2].pk, goals[1].pk]
    assert page["pagination"] == {"limit": 2, "offset": 2, "count": 5, "nextOffset": 4}
    assert service_client.get(GOALS_A, {"limit": 101}).status_code == 400
    assert service_client.get(GOALS_A, {"limit": 0}).status_code == 400
    assert service_client.get(GOALS_A, {"offset": -1}).status_code == 400
    assert service_client.get(GOALS_A, {"page": 2}).status_code == 400


def test_update_progress_seed_example(client_a, profile_a):
    goal = GoalFactory(user=profile_a, status="active")
    response = client_a.put(f"/api/crm/goals/{goal.pk}", {"progress_pct": 45, "status": "active"}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["progress_pct"] == 45.0
    audit = AuditLog.objects.get(entity_type="goal", entity_id=str(goal.pk))
    assert audit.action == "goal.updated"
    assert audit.changes == {"progress_pct": {"old": 0.0, "new": 45.0}}


def test_accepting_a_suggestion(client_a, profile_a):
    goal = GoalFactory(user=profile_a, status="suggested", source="ai_assistant")
    response = client_a.put(f"/api/crm/goals/{goal.pk}", {"status": "active"}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["status"] == "active"
    assert data["accepted_at"] is not None
    audit = AuditLog.objects.get(entity_type="goal", entity_id=str(goal.pk))
    assert audit.action == "goal.accepted"
    assert audit.changes["status"] == {"old": "suggested", "new": "active"}


def test_completing_sets_progress_and_time(service_client, profile_a):
    goal = GoalFactory(user=profile_a, status="active")
    data = service_client.put(f"/api/crm/goals/{goal.pk}", {"status": "completed"}, format="json").json()["data"]
    assert data["progress_pct"] == 100.0
    assert data["completed_at"] is not None


@pytest.mark.parametrize(
    ("start", "target"), [("completed", "active"), ("suggested", "completed"), ("abandoned", "completed")]
)
def test_invalid_status_transition_is_409(service_client, profile_a, start, target):
    goal = GoalFactory(user=profile_a, status=start)
    response = service_client.put(f"/api/crm/goals/{goal.pk}", {"status": target}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_status_transition"
    goal.refresh_from_db()
    assert goal.status == start
    assert AuditLog.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"progress_pct": 101}, "progress_pct"),
        ({"progress_pct": -1}, "progress_pct"),
        ({"status": "paused"}, "status"),
        ({"target_date": "2001-01-01"}, "target_date"),
        ({"goal_type": "sleep"}, "goal_type"),
    ],
)
def test_update_validation(service_client, profile_a, body, field):
    goal = GoalFactory(user=profile_a)
    response = service_client.put(f"/api/crm/goals/{goal.pk}", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == [field]
    goal.refresh_from_db()
    assert goal.progress_pct == 0


def test_update_other_users_goal_is_404(client_b, profile_a, profile_b):
    goal = GoalFactory(user=profile_a)
    response = client_b.put(f"/api/crm/goals/{goal.pk}", {"progress_pct": 99}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    goal.refresh_from_db()
    assert goal.progress_pct == 0


def test_update_unknown_and_huge_goal_ids_are_404(service_client):
    assert service_client.put("/api/crm/goals/999999", {"progress_pct": 1}, format="json").status_code == 404
    assert (
        service_client.put("/api/crm/goals/99999999999999999999", {"progress_pct": 1}, format="json").status_code == 404
    )
