"""GET /churn-risk: staff and service list of users above a risk threshold, highest first."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import ProfileFactory
from tests.support import USER_A

pytestmark = pytest.mark.django_db


def test_churn_risk_list_threshold_order_and_pagination(service_client):
    ProfileFactory(user_id="low", churn_risk=Decimal("0.2"))
    ProfileFactory(user_id="mid", churn_risk=Decimal("0.75"))
    ProfileFactory(user_id="high", churn_risk=Decimal("0.95"))
    ProfileFactory(user_id="edge", churn_risk=Decimal("0.7"))
    response = service_client.get("/api/crm/churn-risk")
    assert response.status_code == 200
    body = response.json()
    assert [row["user_id"] for row in body["data"]] == ["high", "mid", "edge"]
    assert body["data"][0]["churn_risk"] == 0.95
    assert body["pagination"]["count"] == 3
    low = service_client.get("/api/crm/churn-risk", {"min_risk": "0.1", "limit": 2}).json()
    assert [row["user_id"] for row in low["data"]] == ["high", "mid"]
    assert low["pagination"] == {"limit": 2, "offset": 0, "count": 4, "nextOffset": 2}
    bad = service_client.get("/api/crm/churn-risk", {"min_risk": "1.5"})
    assert bad.status_code == 400
    assert list(bad.json()["error"]["details"]) == ["min_risk"]


def test_churn_risk_and_audit_log_are_403_for_end_users(client_a, profile_a):
    for url in ("/api/crm/churn-risk", f"/api/crm/audit-log/{USER_A}"):
        response = client_a.get(url)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
