"""GET /insights (open, newest first), POST /insights/<id>/dismiss (idempotent), GET /coaching-history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from coaching.models import AiInsight
from compliance.models import AuditLog
from tests.coaching.support import ASK, SEED_QUESTION
from tests.factories import CoachingSessionFactory, InsightFactory
from tests.support import USER_A, USER_B

pytestmark = pytest.mark.django_db
INSIGHTS = f"/api/crm/users/{USER_A}/insights"


def test_open_insights_newest_first(client_a, profile_a, profile_b):
    old = InsightFactory(user=profile_a, title="old")
    new = InsightFactory(user=profile_a, title="new")
    AiInsight.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=1))
    InsightFactory(user=profile_a, title="dismissed", dismissed_at=timezone.now())
    InsightFactory(user=profile_b, title="bob's")

    response = client_a.get(INSIGHTS)

    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["data"]] == [new.pk, old.pk]
    assert body["pagination"] == {"limit": 20, "offset": 0, "count": 2, "nextOffset": None}


def test_dismiss_is_idempotent_and_audited_once(client_a, profile_a):
    insight = InsightFactory(user=profile_a)
    url = f"{INSIGHTS}/{insight.pk}/dismiss"

    first = client_a.post(url)
    second = client_a.post(url)

    assert first.status_code == 200
    assert second.status_code == 200
    assert first.json()["data"]["dismissed_at"] is not None
    assert second.json()["data"]["dismissed_at"] == first.json()["data"]["dismissed_at"]
    audit = AuditLog.objects.get(action="insight.dismissed")
    assert (audit.actor_type, audit.actor_id, audit.entity_id) == ("user", USER_A, str(insight.pk))
    assert client_a.get(INSIGHTS).json()["data"] == []


def test_another_users_insight_is_404(client_a, service_client, profile_a, profile_b):
    bobs = InsightFactory(user=profile_b)

    assert client_a.post(f"{INSIGHTS}/{bobs.pk}/dismiss").status_code == 404
    # even for the service key: the insight is not one of user A's
    assert service_client.post(f"{INSIGHTS}/{bobs.pk}/dismiss").status_code == 404
    assert client_a.post(f"/api/crm/users/{USER_B}/insights/{bobs.pk}/dismiss").status_code == 404
    assert client_a.post(f"{INSIGHTS}/{2**63}/dismiss").status_code == 404
    bobs.refresh_from_db()
    assert bobs.dismissed_at is None


def test_coaching_history_is_paginated_with_tools(client_a, profile_a, profile_b):
    client_a.post(ASK.format(USER_A), {"message": SEED_QUESTION}, format="json")
    for _ in range(2):
        CoachingSessionFactory(user=profile_a)
    CoachingSessionFactory(user=profile_b)

    page = client_a.get(f"/api/crm/users/{USER_A}/coaching-history", {"limit": 2})
    rest = client_a.get(f"/api/crm/users/{USER_A}/coaching-history", {"limit": 2, "offset": 2})

    assert page.status_code == 200
    assert page.json()["pagination"] == {"limit": 2, "offset": 0, "count": 3, "nextOffset": 2}
    # one conversation per ask here (none continued another): three conversations of one turn each
    [conversation] = rest.json()["data"]
    assert conversation["turnCount"] == 1
    [asked] = conversation["turns"]
    assert asked["conversationId"] == conversation["conversationId"]
    assert asked["toolsUsed"] == ["get_user_nutrition_summary", "suggest_goal", "create_ai_insight"]
    assert asked["toolCalls"][0]["arguments"] == {"days": 7}
    assert asked["provider"] == "offline"
    assert asked["message"] == SEED_QUESTION


@pytest.mark.parametrize(
    "path", ["insights", "coaching-history", "activities/search?q=x"], ids=["insights", "history", "search"]
)
def test_other_users_jwt_is_404(client_b, profile_a, profile_b, path):
    response = client_b.get(f"/api/crm/users/{USER_A}/{path}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
