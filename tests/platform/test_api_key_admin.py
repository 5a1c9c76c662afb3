"""Service API keys in admin: created with the key shown once, revocable, last use visible."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.support import USER_A
from yahealthy_crm.models import ServiceApiKey

pytestmark = pytest.mark.django_db


def test_admin_creates_and_revokes_a_key(admin_client, profile_a):
    response = admin_client.post("/admin/yahealthy_crm/serviceapikey/add/", {"name": "from-admin"}, follow=True)
    assert response.status_code == 200
    api_key = ServiceApiKey.objects.get(name="from-admin")
    message = next(str(m) for m in response.context["messages"])
    key = message.split("is: ")[1].split(". ")[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    profile = client.get(f"/api/crm/users/{USER_A}")
    assert profile.status_code == 200
    assert profile.json()["data"]["user_id"] == USER_A

    response = admin_client.post(
        f"/admin/yahealthy_crm/serviceapikey/{api_key.pk}/change/",
        {"name": "from-admin", "revoked": "on"},
        follow=True,
    )
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.revoked is True
    assert client.get(f"/api/crm/users/{USER_A}").status_code == 401
    listing = admin_client.get("/admin/yahealthy_crm/serviceapikey/")
    assert listing.status_code == 200
    assert "from-admin" in listing.content.decode()


def test_tombstone_admin_is_read_only(admin_client, service_client, profile_a):
    service_client.delete(f"/api/crm/users/{USER_A}")
    response = admin_client.get("/admin/compliance/erasuretombstone/")
    assert response.status_code == 200
    assert USER_A not in response.content.decode()
    assert admin_client.get("/admin/compliance/erasuretombstone/add/").status_code == 403
