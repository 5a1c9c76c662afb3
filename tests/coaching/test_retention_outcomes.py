"""Outcomes: did the user come back within 14 days; return rate per action type against untreated users."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from coaching.models import ChurnScoreWeekly, RetentionAction
from coaching.retention_actions import retention_outcomes_report, retention_outcomes_update
from coaching.tasks import retention_outcomes_job
from tests.factories import FoodLogFactory, ProfileFactory, RetentionActionFactory

T0 = timezone.now() - dt.timedelta(days=30)  # scored and acted on 30 days ago: every window is over


def week_of(moment: dt.datetime) -> dt.date:
    day = timezone.localdate(moment)
    return day - dt.timedelta(days=day.weekday())


def scored(user_id: str, band: str = "high", at: dt.datetime = T0):
    profile = ProfileFactory(user_id=user_id)
    row = ChurnScoreWeekly.objects.create(
        user=profile,
        week=week_of(at),
        churn_risk=Decimal("0.8"),
        churn_band=band,
        engagement_tier="bronze",
        lifecycle_stage="dormant",
    )
    ChurnScoreWeekly.objects.filter(pk=row.pk).update(created_at=at)
    return profile


def action(profile, action_type: str, at: dt.datetime = T0, band: str = "high") -> RetentionAction:
    return RetentionActionFactory(
        user=profile, action_type=action_type, churn_band=band, created_at=at + dt.timedelta(minutes=5)
    )


def came_back(profile, days_after: float, at: dt.datetime = T0) -> None:
    FoodLogFactory(user=profile, occurred_at=at + dt.timedelta(days=days_after))


@pytest.mark.django_db
def test_outcomes_are_set_when_the_window_ends_in_one_update():
    back = scored("back")
    came_back(back, 3)
    stayed = scored("stayed")
    came_back(stayed, 20)  # after the window
    late = scored("late_window")
    returned = action(back, "streak_restart")
    lost = action(stayed, "streak_restart")
    pending = action(late, "reminder", at=timezone.now() - dt.timedelta(days=2))
    came_back(late, 1, at=timezone.now() - dt.timedelta(days=2))

    assert retention_outcomes_job()["status"] == "succeeded"

    for row in (returned, lost, pending):
        row.refresh_from_db()
    assert (returned.returned, lost.returned, pending.returned) == (True, False, None)
    assert returned.returned_at == T0 + dt.timedelta(days=3)
    assert lost.returned_at is None
    assert retention_outcomes_update() == 0  # decided ones are not touched again


@pytest.mark.django_db
def test_the_report_compares_each_action_type_with_untreated_users_of_the_same_band_and_week():
    # treated, high band: 2 streak restarts (1 back), 1 easier goal (back)
    a1, a2, a3 = scored("t1"), scored("t2"), scored("t3")
    action(a1, "streak_restart")
    action(a2, "streak_restart")
    action(a3, "easier_goal")
    came_back(a1, 2)
    came_back(a3, 5)
    # untreated, high band, same week: 4 users, 1 back within 14 days of the score
    controls = [scored(f"c{n}") for n in range(4)]
    came_back(controls[0], 10)
    came_back(controls[1], 16)  # too late
    # other band or week: not in the comparison
    other_band = scored("low_band", band="low")
    came_back(other_band, 1)
    scored("other_week", at=T0 - dt.timedelta(days=14))
    retention_outcomes_update()

    report = {row["actionType"]: row for row in retention_outcomes_report()["actionTypes"]}

    streak = report["streak_restart"]
    assert (streak["actions"], streak["decided"], streak["returned"], streak["returnRate"]) == (2, 2, 1, 0.5)
    assert streak["control"] == {"users": 4, "returned": 1, "returnRate": 0.25}
    assert streak["lift"] == 0.25
    easier = report["easier_goal"]
    assert (easier["decided"], easier["returned"], easier["returnRate"]) == (1, 1, 1.0)
    assert easier["control"]["returnRate"] == 0.25
    assert report["staff_call"]["actions"] == 0
    assert report["staff_call"]["returnRate"] is None


@pytest.mark.django_db
def test_outcomes_endpoint_is_for_services_and_staff(service_client, client_a):
    a = scored("api_user")
    action(a, "staff_call")
    retention_outcomes_update()
    response = service_client.get("/api/crm/retention/outcomes")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["windowDays"] == 14
    assert {row["actionType"] for row in data["actionTypes"]} == {
        "easier_goal",
        "streak_restart",
        "reminder",
        "staff_call",
    }
    assert client_a.get("/api/crm/retention/outcomes").status_code == 403


@pytest.mark.django_db
def test_admin_shows_the_report_and_staff_record_an_action(client):
    profile = scored("admin_target")
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456789")
    client.force_login(boss)
    page = client.get("/admin/coaching/retentionaction/")
    assert page.status_code == 200
    assert b"Which actions work" in page.content

    refused = client.post("/admin/coaching/retentionaction/add/", {"user": profile.user_id, "action_type": "reminder"})
    assert refused.status_code == 200
    assert b"needs marketing consent" in refused.content
    client.post("/admin/coaching/retentionaction/add/", {"user": profile.user_id, "action_type": "streak_restart"})
    recorded = RetentionAction.objects.get()
    assert (recorded.source, recorded.actor_id, recorded.churn_band) == ("staff", "boss", profile.churn_band)
