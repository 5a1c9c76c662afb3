"""Sync rules that meet the REST API: erased users, and CRM-side changes going out to the app."""

from decimal import Decimal

import pytest

from activities.models import UserActivity
from compliance.gdpr import gdpr_erase
from goals.models import GoalStatus
from goals.services import goal_create, goal_update
from profiles.models import CrmUserProfile
from profiles.services import profile_update
from sync.models import SyncDirection, SyncEvent, SyncStatus
from tests.factories import ProfileFactory
from tests.sync.support import event

pytestmark = pytest.mark.django_db


def test_event_for_an_erased_user_is_410_and_stores_nothing(post_event):
    ProfileFactory(user_id="user_gone")
    gdpr_erase(user_id="user_gone", actor_type="staff", actor_id="dpo")
    events_before = SyncEvent.objects.count()

    response = post_event(event(user_id="user_gone"), key="gone-1")

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "user_erased"
    assert not CrmUserProfile.objects.filter(user_id="user_gone").exists()
    assert not UserActivity.objects.filter(user_id="user_gone").exists()
    assert SyncEvent.objects.count() == events_before


def _outbound(**filters):
    return SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND, **filters)


def test_crm_side_goal_and_profile_changes_become_outbound_events():
    ProfileFactory(user_id="user_out")
    # the coach suggests a goal, the user accepts it through the API
    goal = goal_create(
        user_id="user_out",
        goal_type="nutrition",
        goal_value=Decimal("120"),
        goal_unit="g",
        metric="protein_g",
        actor_type="ai_assistant",
        actor_id="coach",
        status=GoalStatus.SUGGESTED,
    )
    goal_update(goal_id=goal.pk, actor_type="user", actor_id="user_out", fields={"status": GoalStatus.ACTIVE})
    # staff verify a health field
    profile_update(user_id="user_out", actor_type="staff", actor_id="nurse", fields={"height_cm": Decimal("181")})

    operations = list(_outbound(user_id="user_out").order_by("id").values_list("entity_type", "operation", "status"))
    assert operations == [
        ("goal", "create", SyncStatus.SKIPPED),
        ("goal", "accept", SyncStatus.SKIPPED),
        ("profile", "verified", SyncStatus.SKIPPED),
    ]


def test_changes_made_by_the_app_are_never_echoed_back():
    ProfileFactory(user_id="user_app")
    goal = goal_create(
        user_id="user_app",
        goal_type="water",
        goal_value=Decimal("2000"),
        goal_unit="ml",
        actor_type="app",
        actor_id="a",
    )
    goal_update(goal_id=goal.pk, actor_type="app", actor_id="a", fields={"progress_pct": Decimal("50")})
    profile_update(user_id="user_app", actor_type="user", actor_id="user_app", fields={"age": 31})
    assert not _outbound(user_id="user_app").exists()
