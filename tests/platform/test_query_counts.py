"""Every list/detail endpoint runs the same number of SQL queries for 1 row as for 50."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance.services import audit_record
from tests.factories import FoodLogFactory, GoalFactory, InsightFactory, ProfileFactory, days_ago
from tests.support import USER_A

pytestmark = pytest.mark.django_db

# Queries with a JWT caller (no key lookup): the budget for any data size.
ENDPOINTS = [
    ("/api/crm/users/{a}", 1),
    ("/api/crm/users/{a}/goals?status=all&limit=100", 3),
    ("/api/crm/users/{a}/activities?limit=100", 3),
    ("/api/crm/users/{a}/nutrition-snapshot", 3),
    ("/api/crm/users/{a}/metrics", 5),  # + the active churn model and its features (one statement)
    ("/api/crm/users/{a}/export", 10),  # the seven tables, coaching conversations, profile lookup, audit
    ("/api/crm/churn-risk?min_risk=0.5&limit=100", 2),
    ("/api/crm/audit-log/{a}?limit=100", 3),
]


def _rows(profile, n: int) -> None:
    for i in range(n):
        GoalFactory(user=profile)
        FoodLogFactory(user=profile, occurred_at=days_ago(i % 10))
        InsightFactory(user=profile)
        audit_record(actor_type="system", action="x", entity_type="profile", user_id=profile.user_id)
        ProfileFactory(churn_risk=Decimal("0.9"))


@pytest.mark.parametrize(("url", "budget"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
@pytest.mark.parametrize("rows", [1, 50])
def test_constant_queries(client_a, staff_client, profile_a, django_assert_max_num_queries, url, budget, rows):
    # given
    _rows(profile_a, rows)
    client = staff_client if "churn-risk" in url or "audit-log" in url else client_a
    client.get(url.format(a=USER_A))  # warm up: session and content types
    # when / then
    with django_assert_max_num_queries(budget + (2 if client is staff_client else 0)):
        response = client.get(url.format(a=USER_A))
    assert response.status_code == 200
    assert response.json()["status"] == "success"


@pytest.mark.parametrize(("url", "budget"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_same_query_count_for_1_and_50_rows(service_client, url, budget):
    counts = []
    for rows, user_id in ((1, "qc_one"), (50, "qc_fifty")):
        profile = ProfileFactory(user_id=user_id, churn_risk=Decimal("0.9"))
        _rows(profile, rows)
        target = url.format(a=user_id)
        service_client.get(target)
        with CaptureQueriesContext(connection) as queries:
            assert service_client.get(target).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
