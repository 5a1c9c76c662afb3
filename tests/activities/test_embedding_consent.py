"""Only users with AI consent are embedded (design.md "AI coach"), and withdrawing consent drops a
user's embeddings (activities and coaching sessions) in the withdrawing transaction, whichever entry
point withdraws it (REST, admin/services, single and batch app events)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from activities.models import UserActivity
from activities.selectors import activity_text
from activities.services import activities_embed_pending, activities_missing_embedding, embeddings_backfill
from coaching.models import CoachingSession
from coaching.services import coaching_session_embedding_refresh
from profiles.models import CrmUserProfile
from profiles.services import profile_update
from tests.factories import CoachingSessionFactory, FoodLogFactory, ProfileFactory
from tests.support import USER_A
from tests.sync.support import WEBHOOK_SECRET, event, signed_headers

pytestmark = pytest.mark.django_db
VECTOR = [0.1] * 256


@pytest.fixture(autouse=True)
def _offline_embedder(settings):
    settings.OPENAI_API_KEY = ""
    settings.CRM_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.APP_WEBHOOK_URL = ""


def _embedded(user_id: str) -> tuple[int, int]:
    """(activities, coaching sessions) of the user that hold an embedding."""
    return (
        UserActivity.objects.filter(user_id=user_id, embedding__isnull=False).count(),
        CoachingSession.objects.filter(user_id=user_id, embedding__isnull=False).count(),
    )


def _with_embeddings(user_id: str, **profile_fields) -> CrmUserProfile:
    profile = ProfileFactory(user_id=user_id, **profile_fields)
    for _ in range(2):
        FoodLogFactory(user=profile)
    CoachingSessionFactory(user=profile)
    UserActivity.objects.filter(user_id=user_id).update(embedding=VECTOR)
    CoachingSession.objects.filter(user_id=user_id).update(embedding=VECTOR)
    return profile


def test_the_sweep_embeds_only_users_with_ai_consent_and_catches_up_when_granted():
    consenting = ProfileFactory(user_id="consenting")
    refusing = ProfileFactory(user_id="refusing", consent_ai_processing=False)
    FoodLogFactory(user=consenting)
    FoodLogFactory(user=refusing)
    FoodLogFactory(user=refusing)

    assert activities_embed_pending() == 1
    assert _embedded("consenting")[0] == 1
    assert _embedded("refusing")[0] == 0
    assert activities_embed_pending() == 0  # the refusing user's rows stay pending, skipped

    profile_update(user_id="refusing", actor_type="user", actor_id="refusing", fields={"consent_ai_processing": True})
    assert activities_embed_pending() == 2


def test_the_sweep_still_reads_its_rows_from_the_partial_index_with_the_consent_filter():
    FoodLogFactory()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = activities_missing_embedding().defer("embedding").filter(pk__gt=0).order_by("pk")[:256].explain()

    assert "crm_activity_embed_pending_idx" in plan, plan
    assert "crm_user_profiles" in plan, plan  # the consent EXISTS, probed per row


def test_a_store_for_a_user_who_withdrew_meanwhile_is_skipped():
    profile = ProfileFactory(user_id="withdrew_meanwhile")
    FoodLogFactory(user=profile)

    def text_while_the_user_withdraws(activity):
        CrmUserProfile.objects.filter(pk=profile.pk).update(consent_ai_processing=False)
        return activity_text(activity)

    assert embeddings_backfill(activities_missing_embedding(), text_while_the_user_withdraws) == 0
    assert _embedded("withdrew_meanwhile") == (0, 0)


def test_embed_activities_and_session_embeddings_skip_users_without_consent(capsys):
    consenting = ProfileFactory(user_id="consenting")
    refusing = ProfileFactory(user_id="refusing", consent_ai_processing=False)
    for profile in (consenting, refusing):
        FoodLogFactory(user=profile)
        CoachingSessionFactory(user=profile)

    call_command("embed_activities")

    assert "embedded 1 activities and 1 coaching sessions" in capsys.readouterr().out
    assert _embedded("consenting") == (1, 1)
    assert _embedded("refusing") == (0, 0)
    refused_session = CoachingSession.objects.get(user_id="refusing")
    assert coaching_session_embedding_refresh(session_id=refused_session.pk) is False
    assert _embedded("refusing") == (0, 0)


def test_withdrawal_through_the_api_drops_the_users_embeddings_only(client_a):
    _with_embeddings(USER_A)
    _with_embeddings("someone_else")

    response = client_a.put(
        f"/api/crm/users/{USER_A}", data={"consent_ai_processing": False}, content_type="application/json"
    )

    assert response.status_code == 200
    assert _embedded(USER_A) == (0, 0)
    assert _embedded("someone_else") == (2, 1)
    # and the sweep does not bring them back
    activities_embed_pending()
    assert _embedded(USER_A) == (0, 0)


def test_withdrawal_and_drop_share_one_transaction():
    _with_embeddings("changes_mind")

    seen_inside = []

    def withdraw_then_fail():
        with transaction.atomic():
            profile_update(
                user_id="changes_mind", actor_type="staff", actor_id="carol", fields={"consent_ai_processing": False}
            )
            seen_inside.append(_embedded("changes_mind"))
            raise RuntimeError("the withdrawal's transaction fails")

    with pytest.raises(RuntimeError):
        withdraw_then_fail()

    assert seen_inside == [(0, 0)]  # inside the transaction: gone with the consent

    # rolled back together: consent still granted, embeddings still there
    assert CrmUserProfile.objects.get(user_id="changes_mind").consent_ai_processing is True
    assert _embedded("changes_mind") == (2, 1)


def test_an_unchanged_or_granted_consent_keeps_the_embeddings():
    _with_embeddings("keeps")
    profile_update(user_id="keeps", actor_type="user", actor_id="keeps", fields={"consent_ai_processing": True})
    profile_update(user_id="keeps", actor_type="user", actor_id="keeps", fields={"age": 41})
    assert _embedded("keeps") == (2, 1)


def test_withdrawal_by_an_app_event_drops_the_embeddings(client):
    _with_embeddings("app_user")
    body = json.dumps(
        event(
            "profile",
            "update",
            user_id="app_user",
            external_id="app_user",
            payload={"consent_ai_processing": False},
            occurredAt=timezone.now().isoformat(),
        )
    )

    response = client.post(
        "/api/crm/webhooks/app-event", data=body, content_type="application/json", headers=signed_headers(body)
    )

    assert response.status_code == 202, response.content
    assert CrmUserProfile.objects.get(user_id="app_user").consent_ai_processing is False
    assert _embedded("app_user") == (0, 0)


def test_withdrawal_in_an_app_event_batch_drops_the_embeddings(client):
    _with_embeddings("batch_user")
    _with_embeddings("batch_other")
    events = [
        event(
            "profile",
            "update",
            user_id="batch_user",
            external_id="batch_user",
            payload={"consent_ai_processing": False},
            occurredAt=timezone.now().isoformat(),
        ),
        event(
            "profile",
            "update",
            user_id="batch_other",
            external_id="batch_other",
            payload={"age": 33},
            occurredAt=timezone.now().isoformat(),
        ),
    ]
    body = json.dumps({"events": events})

    response = client.post(
        "/api/crm/webhooks/app-events", data=body, content_type="application/json", headers=signed_headers(body)
    )

    assert response.status_code in (200, 202, 207), response.content
    assert _embedded("batch_user") == (0, 0)
    assert _embedded("batch_other") == (2, 1)
