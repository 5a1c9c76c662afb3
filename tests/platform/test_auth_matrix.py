"""The CRM REST endpoints (users, goals, activities, metrics, churn risk, audit log) against every kind
of caller (anonymous, own JWT, another user's JWT, service key, staff), with the exact status."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import FoodLogFactory, GoalFactory
from tests.support import USER_A, USER_B, bearer_client, make_jwt

pytestmark = pytest.mark.django_db

FUTURE = (timezone.localdate() + dt.timedelta(days=30)).isoformat()

# (name, method, url, body, status for a caller allowed to act on user A)
ENDPOINTS = [
    ("create_user", "post", "/api/crm/users", {"user_id": "user_carl", "age": 33}, 201),
    ("get_user", "get", "/api/crm/users/{a}", None, 200),
    ("update_user", "put", "/api/crm/users/{a}", {"age": 29}, 200),
    ("erase_user", "delete", "/api/crm/users/{a}", None, 204),
    ("export_user", "get", "/api/crm/users/{a}/export", None, 200),
    ("list_goals", "get", "/api/crm/users/{a}/goals", None, 200),
    (
        "create_goal",
        "post",
        "/api/crm/users/{a}/goals",
        {"goal_type": "weight", "goal_value": 75, "goal_unit": "kg", "target_date": FUTURE},
        201,
    ),
    ("update_goal", "put", "/api/crm/goals/{goal}", {"progress_pct": 45}, 200),
    ("list_activities", "get", "/api/crm/users/{a}/activities?limit=20", None, 200),
    ("nutrition_snapshot", "get", "/api/crm/users/{a}/nutrition-snapshot", None, 200),
    ("metrics", "get", "/api/crm/users/{a}/metrics", None, 200),
    ("churn_risk", "get", "/api/crm/churn-risk", None, 200),
    ("audit_log", "get", "/api/crm/audit-log/{a}", None, 200),
    ("list_users", "get", "/api/crm/users?band=low", None, 200),
]
CROSS_USER = {"churn_risk", "audit_log", "list_users"}  # not for end users at all


def _expected(caller: str, endpoint: str, ok: int) -> tuple[int, str | None]:
    if caller in ("anonymous",):
        return 401, "not_authenticated"
    if caller in ("expired_jwt", "wrong_signature_jwt", "revoked_key"):
        return 401, "authentication_failed"
    if caller == "staff_session" and endpoint == "erase_user":
        return 403, "permission_denied"  # among staff only superusers erase (tests/profiles/test_staff_roles.py)
    if caller in ("service_key", "staff_session"):
        return ok, None
    if endpoint in CROSS_USER or endpoint == "create_user":
        return 403, "permission_denied"  # end users: never cross-user lists, only their own profile
    if caller == "jwt_a":
        return ok, None
    return 404, "not_found"  # jwt_b on A's data


def _client(caller: str, *, service_key, revoked_key, staff_user) -> APIClient:
    if caller == "anonymous":
        return APIClient()
    if caller == "jwt_a":
        return bearer_client(make_jwt(USER_A))
    if caller == "jwt_b":
        return bearer_client(make_jwt(USER_B))
    if caller == "expired_jwt":
        return bearer_client(make_jwt(USER_A, expires_in_s=-60))
    if caller == "wrong_signature_jwt":
        return bearer_client(make_jwt(USER_A, secret="not-the-configured-secret-0123456789abcdef"))
    client = APIClient()
    if caller == "service_key":
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {service_key}")
    elif caller == "revoked_key":
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {revoked_key}")
    elif caller == "staff_session":
        client.force_login(staff_user)
    return client


CALLERS = [
    "anonymous",
    "jwt_a",
    "jwt_b",
    "expired_jwt",
    "wrong_signature_jwt",
    "service_key",
    "revoked_key",
    "staff_session",
]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("endpoint", "method", "url", "body", "ok"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_auth_matrix(caller, endpoint, method, url, body, ok, profile_a, profile_b, service_key, staff_user):
    # given A's data in every table the endpoints read, and B's own goal
    from compliance.services import audit_record
    from yahealthy_crm.models import ServiceApiKey

    goal_a = GoalFactory(user=profile_a, goal_value=88)
    GoalFactory(user=profile_b)
    FoodLogFactory(user=profile_a)
    audit_record(actor_type="app", action="profile.updated", entity_type="profile", user_id=USER_A)
    revoked, revoked_key = ServiceApiKey.objects.create_key(name="old-backend")
    revoked.revoked = True
    revoked.save()
    client = _client(caller, service_key=service_key[1], revoked_key=revoked_key, staff_user=staff_user)

    # when
    response = getattr(client, method)(url.format(a=USER_A, goal=goal_a.pk), body, format="json")

    # then
    status, code = _expected(caller, endpoint, ok)
    assert response.status_code == status
    if status == 204:
        assert response.content == b""
        return
    assert response["Content-Type"] == "application/json"
    payload = response.json()
    if code is None:
        assert payload["status"] == "success"
    else:
        assert payload["status"] == "error"
        assert payload["error"]["code"] == code
        # zero data of A in any refusal
        assert USER_A not in response.content.decode()
        assert "88" not in response.content.decode()
