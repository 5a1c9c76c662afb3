"""GET /api/crm/users: list and filter users (the admin's segments) with cursor pagination; service
keys and staff only. POST on the same path still creates a profile."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from profiles.models import CrmUserProfile
from tests.factories import ProfileFactory, days_ago
from tests.support import USER_A

pytestmark = pytest.mark.django_db
URL = "/api/crm/users"


@pytest.fixture
def users():
    old = timezone.now() - dt.timedelta(days=60)
    made = [
        ProfileFactory(
            user_id="l_risky",
            churn_risk=Decimal("0.9"),
            churn_band="high",
            engagement_tier="bronze",
            lifecycle_stage="dormant",
            primary_goal="weight_loss",
            last_active_at=days_ago(20),
            consent_ai_processing=False,
        ),
        ProfileFactory(
            user_id="l_steady",
            churn_risk=Decimal("0.1"),
            churn_band="low",
            engagement_tier="gold",
            lifecycle_stage="current",
            primary_goal="muscle_gain",
            last_active_at=days_ago(1),
            consent_marketing=True,
        ),
        ProfileFactory(
            user_id="l_slipping",
            churn_risk=Decimal("0.6"),
            churn_band="medium",
            engagement_tier="silver",
            last_active_at=days_ago(9),
        ),
        ProfileFactory(user_id="l_never", last_active_at=None),
    ]
    CrmUserProfile.objects.filter(user_id="l_never").update(created_at=old)
    return made


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["user_id"] for row in response.json()["data"]]


def test_service_key_lists_users_highest_risk_first(service_client, users):
    response = service_client.get(URL)
    assert _ids(response) == ["l_risky", "l_slipping", "l_steady", "l_never"]
    body = response.json()
    assert body["pagination"] == {"limit": 20, "ordering": "-churn_risk", "nextCursor": None}
    assert set(body["data"][0]) == {
        "user_id",
        "engagement_tier",
        "lifecycle_stage",
        "churn_risk",
        "churn_band",
        "primary_goal",
        "activity_level",
        "last_active_at",
        "consent_ai_processing",
        "consent_marketing",
        "created_at",
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"band": "high"}, {"l_risky"}),
        ({"tier": "gold"}, {"l_steady"}),
        ({"lifecycle": "dormant"}, {"l_risky"}),
        ({"primary_goal": "muscle_gain"}, {"l_steady"}),
        ({"inactive_days": "7"}, {"l_risky", "l_slipping", "l_never"}),
        ({"inactive_days": "14"}, {"l_risky", "l_never"}),
        ({"inactive_days": "30"}, {"l_never"}),
        ({"consent_ai": "false"}, {"l_risky"}),
        ({"consent_marketing": "true"}, {"l_steady"}),
        ({"search": "SLIP"}, {"l_slipping"}),
        ({"band": "high", "inactive_days": "14", "consent_ai": "false"}, {"l_risky"}),
    ],
)
def test_filters_are_the_admin_segments(staff_client, users, params, expected):
    assert set(_ids(staff_client.get(URL, params))) == expected


def test_end_users_get_403_but_may_still_create_their_own_profile(client_a):
    response = client_a.get(URL)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    created = client_a.post(URL, {"user_id": USER_A, "age": 30}, format="json")
    assert created.status_code == 201


def test_anonymous_is_401(anon_client):
    assert anon_client.get(URL).status_code == 401


def test_cursor_pages_cover_every_user_once_even_when_users_are_added_meanwhile(service_client):
    # given 25 users, many with the same risk (ties are broken by id)
    for i in range(25):
        ProfileFactory(user_id=f"p_{i:02d}", churn_risk=Decimal("0.5") if i % 2 else Decimal(f"0.{i:02d}"))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        response = service_client.get(URL, params)
        seen += _ids(response)
        pages += 1
        if pages == 1:  # a user added after the first page, with a risk above it: not repeated, not shifting
            ProfileFactory(user_id="p_new_top", churn_risk=Decimal("0.99"))
        cursor = response.json()["pagination"]["nextCursor"]
        if cursor is None:
            break
    assert pages == 4
    assert len(seen) == len(set(seen)) == 25
    assert "p_new_top" not in seen


@pytest.mark.parametrize("ordering", ["churn_risk", "-created_at", "created_at", "user_id"])
def test_every_ordering_pages_through_everything(service_client, ordering):
    for i in range(9):
        ProfileFactory(user_id=f"o_{i}", churn_risk=Decimal(f"0.{i % 3}"))
    seen, cursor = [], None
    while True:
        response = service_client.get(URL, {"limit": 4, "ordering": ordering, **({"cursor": cursor} if cursor else {})})
        seen += _ids(response)
        cursor = response.json()["pagination"]["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 9
    if ordering == "user_id":
        assert seen == sorted(seen)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"band": "extreme"}, "band"),
        ({"inactive_days": "10"}, "inactive_days"),
        ({"consent_ai": "yes"}, "consent_ai"),
        ({"limit": "1000"}, "limit"),
        ({"ordering": "age"}, "ordering"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"bandd": "high"}, "bandd"),
    ],
)
def test_bad_parameters_are_400_with_the_field(service_client, params, field):
    response = service_client.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert field in body["error"]["details"]


def test_a_cursor_of_another_ordering_is_400(service_client, users):
    first = service_client.get(URL, {"limit": 1}).json()["pagination"]["nextCursor"]
    response = service_client.get(URL, {"limit": 1, "ordering": "user_id", "cursor": first})
    assert response.status_code == 400
    assert "ordering" in response.json()["error"]["message"]


def test_list_takes_the_same_queries_for_any_page(service_client, django_assert_max_num_queries):
    for i in range(30):
        ProfileFactory(user_id=f"qc_{i:02d}")
    service_client.get(URL)
    cursor = service_client.get(URL, {"limit": 5}).json()["pagination"]["nextCursor"]
    with django_assert_max_num_queries(2):  # key lookup + the page
        assert service_client.get(URL, {"limit": 5, "cursor": cursor, "band": "low"}).status_code == 200


def test_list_is_in_the_openapi_schema_with_its_filters():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/crm/users"]["get"]
    assert operation["operationId"] == "users_list"
    names = {p["name"] for p in operation["parameters"]}
    assert names >= {"band", "tier", "lifecycle", "primary_goal", "inactive_days", "consent_ai", "search", "cursor"}
    assert {"401", "403", "200"} <= set(operation["responses"])
    assert schema["paths"]["/api/crm/users"]["post"]["operationId"] == "users_create"
