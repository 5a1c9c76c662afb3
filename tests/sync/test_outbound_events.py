"""Every CRM-side change the app shows reaches a real local receiver through the outbox.

Each change is made through its service (the same function REST, admin, coach and jobs call), its
transaction commits, the eager Celery task runs the real delivery code, and the receiver (which
verifies the Standard Webhooks signature and answers 500 when it does not verify) records the body.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from django.db import connection
from standardwebhooks import Webhook

from coaching.engagement import engagement_tier_step
from coaching.retention import churn_assess_users
from coaching.services import insight_create, insight_dismiss
from compliance.gdpr import gdpr_erase
from compliance.selectors import user_id_hash
from goals.models import GoalStatus, GoalType
from goals.services import goal_create, goal_update
from profiles.models import CrmUserProfile
from profiles.services import profile_update
from sync.models import SyncDirection, SyncEvent, SyncStatus
from tests.factories import ProfileFactory
from tests.sync.test_outbound import APP_SECRET, Receiver

pytestmark = pytest.mark.django_db

USER = "user_outbound"
FORGER_SECRET = "whsec_" + "bm90LXRoZS1hcHAtc2VjcmV0LTAxMjM0NTY3ODk="  # not the app's secret


@pytest.fixture
def app(httpserver, settings, celery_eager) -> Receiver:
    """The app's webhook endpoint; every outbound event is delivered to it by the real task."""
    handler = Receiver()
    httpserver.expect_request("/app/webhooks/crm", method="POST").respond_with_handler(handler)
    settings.APP_WEBHOOK_URL = httpserver.url_for("/app/webhooks/crm")
    settings.APP_WEBHOOK_SECRET = APP_SECRET
    return handler


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run the block's on-commit callbacks (the delivery enqueue) as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def profile():
    return ProfileFactory(user_id=USER)


def _bodies(app: Receiver, event_type: str) -> list[dict]:
    return [request["body"] for request in app.requests if request["body"]["type"] == event_type]


def _delivered_once(app: Receiver, event_type: str) -> dict:
    """The one body of `event_type` the receiver accepted; every outbound row is delivered."""
    bodies = _bodies(app, event_type)
    assert len(bodies) == 1, [r["body"]["type"] for r in app.requests]
    assert set(SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND).values_list("status", flat=True)) == {
        SyncStatus.DELIVERED
    }
    return bodies[0]


def test_the_receiver_rejects_a_badly_signed_body(app, settings):
    # The guarantee every other test leans on: a body that does not verify is refused, not recorded.
    headers = {"webhook-id": "msg_forged", "webhook-timestamp": str(int(time.time()))}
    headers["webhook-signature"] = Webhook(FORGER_SECRET).sign("msg_forged", dt.datetime.now(tz=dt.UTC), "{}")
    request = urllib.request.Request(settings.APP_WEBHOOK_URL, data=b"{}", method="POST", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 500
    assert app.requests == []


def test_coach_suggested_goal_goes_out_as_create_and_accepting_it_as_accept(app, commit, profile):
    with commit():
        goal = goal_create(
            user_id=USER,
            goal_type=GoalType.NUTRITION,
            metric="protein_g",
            goal_value=Decimal("120"),
            goal_unit="g",
            status=GoalStatus.SUGGESTED,
            actor_type="ai_assistant",
            actor_id="coach",
        )
    created = _delivered_once(app, "goal.create")
    assert created["data"]["userId"] == USER
    assert created["data"]["entityType"] == "goal"
    assert created["data"]["operation"] == "create"
    assert created["data"]["entityId"] == str(goal.pk)
    assert created["data"]["origin"] == "ai_assistant"
    assert created["data"]["goal"]["status"] == "suggested"
    assert created["data"]["goal"]["goalValue"] == 120.0
    assert created["data"]["goal"]["metric"] == "protein_g"

    with commit():
        goal_update(goal_id=goal.pk, user_id=USER, actor_type="user", actor_id=USER, fields={"status": "active"})
    accepted = _delivered_once(app, "goal.accept")
    assert accepted["data"]["origin"] == "user"
    assert accepted["data"]["goal"]["id"] == goal.pk
    assert accepted["data"]["goal"]["status"] == "active"


@pytest.mark.parametrize(
    ("start", "new_status", "progress"),
    [("suggested", "abandoned", 0.0), ("active", "abandoned", 0.0), ("active", "completed", 100.0)],
    ids=["declined", "abandoned", "completed"],
)
def test_declined_abandoned_and_completed_goals_go_out_as_update(app, commit, profile, start, new_status, progress):
    goal = goal_create(
        user_id=USER,
        goal_type=GoalType.NUTRITION,
        metric="protein_g",
        goal_value=Decimal("120"),
        goal_unit="g",
        status=start,
        actor_type="staff",
        actor_id="coach@crm",
    )
    SyncEvent.objects.all().delete()  # the create: recorded, never delivered (its commit was not captured)

    with commit():
        goal_update(goal_id=goal.pk, actor_type="staff", actor_id="coach@crm", fields={"status": new_status})

    updated = _delivered_once(app, "goal.update")
    assert updated["data"]["goal"]["status"] == new_status
    assert updated["data"]["goal"]["progressPct"] == progress
    assert updated["data"]["origin"] == "staff"


def test_staff_verified_profile_fields_go_out(app, commit, profile):
    with commit():
        profile_update(user_id=USER, actor_type="staff", actor_id="nurse@crm", fields={"age": 41})

    verified = _delivered_once(app, "profile.verified")
    assert verified["data"]["entityType"] == "profile"
    assert verified["data"]["entityId"] == USER
    assert verified["data"]["fields"] == {"age": 41}


def test_created_insight_goes_out(app, commit, profile):
    with commit():
        insight = insight_create(user_id=USER, title="Protein is up", body="Your protein rose this week.")

    created = _delivered_once(app, "insight.create")
    assert created["data"]["entityId"] == str(insight.pk)
    assert created["data"]["origin"] == "ai_assistant"
    assert created["data"]["insight"] == {
        "id": insight.pk,
        "title": "Protein is up",
        "body": "Your protein rose this week.",
        "dismissedAt": None,
    }


def test_dismissed_insight_goes_out_once(app, commit, profile):
    insight = insight_create(user_id=USER, title="Protein is up", body="Your protein rose this week.")
    SyncEvent.objects.all().delete()  # the create: recorded, never delivered (its commit was not captured)

    with commit():
        insight = insight_dismiss(insight=insight, actor_type="user", actor_id=USER)
    with commit():
        insight_dismiss(insight=insight, actor_type="user", actor_id=USER)  # already dismissed: nothing new

    dismissed = _delivered_once(app, "insight.dismiss")
    assert dismissed["data"]["operation"] == "dismiss"
    assert dismissed["data"]["entityId"] == str(insight.pk)
    assert dismissed["data"]["insight"]["id"] == insight.pk
    assert dismissed["data"]["insight"]["dismissedAt"] == insight.dismissed_at.isoformat()
    assert SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND).count() == 1


def test_tier_changed_by_staff_goes_out(app, commit, profile):
    with commit():
        profile_update(user_id=USER, actor_type="staff", actor_id="ops@crm", fields={"engagement_tier": "gold"})

    changed = _delivered_once(app, "profile.tier_changed")
    assert changed["data"]["entityId"] == USER
    assert changed["data"]["engagementTier"] == "gold"
    assert changed["data"]["previousTier"] == "bronze"
    assert changed["data"]["origin"] == "staff"


def test_tier_step_by_the_coach_goes_out(app, commit):
    ProfileFactory(user_id=USER, engagement_tier="silver")  # no activity: bronze is justified

    with commit():
        assert engagement_tier_step(user_id=USER, tier="bronze", actor_type="ai_assistant", actor_id="coach") == (
            "silver",
            "bronze",
        )

    changed = _delivered_once(app, "profile.tier_changed")
    assert changed["data"]["engagementTier"] == "bronze"
    assert changed["data"]["previousTier"] == "silver"
    assert changed["data"]["origin"] == "ai_assistant"


def test_bulk_tier_refresh_sends_one_event_per_changed_user(app, commit):
    ProfileFactory(user_id="user_gold", engagement_tier="gold")  # no activity: drops to bronze
    ProfileFactory(user_id="user_bronze", engagement_tier="bronze")  # unchanged: nothing to send

    with commit():
        assert churn_assess_users(user_ids=["user_gold", "user_bronze"], refresh_tiers=True) == 2

    changed = _delivered_once(app, "profile.tier_changed")
    assert changed["data"]["userId"] == "user_gold"
    assert changed["data"]["engagementTier"] == "bronze"
    assert changed["data"]["previousTier"] == "gold"
    assert changed["data"]["origin"] == "system"
    assert len(app.requests) == 1


def test_consent_changed_by_the_user_goes_out_with_both_flags(app, commit, profile):
    with commit():
        profile_update(user_id=USER, actor_type="user", actor_id=USER, fields={"consent_marketing": True})
    with commit():
        profile_update(user_id=USER, actor_type="user", actor_id=USER, fields={"consent_marketing": True})  # same

    changed = _delivered_once(app, "profile.consent_changed")
    profile.refresh_from_db()
    assert changed["data"]["entityId"] == USER
    assert changed["data"]["origin"] == "user"
    assert changed["data"]["consentMarketing"] is True
    assert changed["data"]["consentMarketingAt"] == profile.consent_marketing_at.isoformat()
    assert changed["data"]["consentAiProcessing"] is True
    assert changed["data"]["consentAiProcessingAt"] == (
        profile.consent_ai_processing_at.isoformat() if profile.consent_ai_processing_at else None
    )
    assert len(app.requests) == 1


def test_app_originated_changes_are_not_echoed(app, commit, profile, post_event):
    # given: the app changes consent through a signed webhook, and tier and consent over REST
    with commit():
        response = post_event(
            {
                "entityType": "profile",
                "operation": "update",
                "userId": USER,
                "externalId": USER,
                "payload": {"consent_marketing": True},
            }
        )
    with commit():
        profile_update(
            user_id=USER,
            actor_type="app",
            actor_id="app-backend",
            fields={"engagement_tier": "gold", "consent_ai_processing": False},
        )
    # then: both changes are applied, nothing goes back to the app
    assert response.status_code == 202
    profile.refresh_from_db()
    assert (profile.consent_marketing, profile.consent_ai_processing, profile.engagement_tier) == (True, False, "gold")
    assert SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND).count() == 0
    assert app.requests == []


def test_erased_user_goes_out_with_the_id_and_leaves_only_the_pseudonym(app, commit, profile):
    # given: an earlier outbound event that names the user
    with commit():
        profile_update(user_id=USER, actor_type="staff", actor_id="ops@crm", fields={"engagement_tier": "gold"})
    # when
    with commit():
        tombstone = gdpr_erase(user_id=USER, actor_type="staff", actor_id="dpo@crm")
    # then: the app gets the raw id to erase on its side
    erased = _delivered_once(app, "user.erased")
    assert erased["data"]["userId"] == USER
    assert erased["data"]["entityType"] == "user"
    assert erased["data"]["operation"] == "erased"
    assert erased["data"]["entityId"] == tombstone.user_id_hash == user_id_hash(user_id=USER)
    assert erased["data"]["erasedAt"] == tombstone.erased_at.isoformat()
    # and the database keeps only the erase event, under the pseudonym, raw id nowhere
    event = SyncEvent.objects.get(direction=SyncDirection.OUTBOUND)
    assert (event.entity_type, event.operation, event.user_id) == ("user", "erased", tombstone.user_id_hash)
    assert event.payload["data"]["userId"] == tombstone.user_id_hash
    assert not SyncEvent.objects.filter(user_id=USER).exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM crm_sync_events WHERE row_to_json(crm_sync_events)::text LIKE %s", [f"%{USER}%"]
        )
        assert cursor.fetchone()[0] == 0
    # a second erase is a no-op: no second event
    with commit():
        assert gdpr_erase(user_id=USER, actor_type="staff", actor_id="dpo@crm").pk == tombstone.pk
    assert len(_bodies(app, "user.erased")) == 1
    assert SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND).count() == 1
    assert not CrmUserProfile.objects.filter(user_id=USER).exists()


def test_erase_requested_by_the_app_is_not_echoed(app, commit, service_client, profile):
    with commit():
        assert service_client.delete(f"/api/crm/users/{USER}").status_code == 204

    assert SyncEvent.objects.filter(direction=SyncDirection.OUTBOUND).count() == 0
    assert app.requests == []
