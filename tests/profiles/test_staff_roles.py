"""Staff roles: the "CRM viewer" group (created by a migration) looks but cannot change, erase or export;
only superusers erase a user, in admin and through the API."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from rest_framework.test import APIClient

from compliance.models import AuditLog
from profiles.models import CrmUserProfile
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db

CRM_APPS = ("profiles", "goals", "activities", "coaching", "sync", "compliance")
CHANGELIST = reverse("admin:profiles_crmuserprofile_changelist")
EXPORT = reverse("admin:profiles_crmuserprofile_export")


@pytest.fixture
def risky():
    return ProfileFactory(user_id="role_risky", churn_risk=Decimal("0.9"), churn_band="high", age=40)


@pytest.fixture
def viewer(db):
    user = get_user_model().objects.create_user("viewer", password="pw-123456789", is_staff=True)
    user.groups.add(Group.objects.get(name="CRM viewer"))
    return user


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def editor(db):
    """Staff with every right on profiles (change, delete, export) but not a superuser."""
    user = get_user_model().objects.create_user("editor", password="pw-123456789", is_staff=True)
    codenames = ["view_crmuserprofile", "change_crmuserprofile", "delete_crmuserprofile", "export_crmuserprofile"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def _actions(page) -> set[str]:
    form = page.context["action_form"]
    return set() if form is None else {name for name, _ in form.fields["action"].choices if name}


def test_the_viewer_group_has_view_permissions_on_every_crm_model_and_nothing_else():
    group = Group.objects.get(name="CRM viewer")
    granted = {(p.content_type.app_label, p.codename) for p in group.permissions.select_related("content_type")}
    expected = {
        (model._meta.app_label, f"view_{model._meta.model_name}")
        for label in CRM_APPS
        for model in apps.get_app_config(label).get_models()
    }
    assert granted == expected


def test_viewer_sees_the_list_the_360_page_and_the_dashboard(viewer_client, risky):
    assert viewer_client.get(CHANGELIST).status_code == 200
    page = viewer_client.get(reverse("admin:profiles_crmuserprofile_change", args=[risky.pk]))
    assert page.status_code == 200
    assert "User 360" in page.content.decode()
    assert viewer_client.get(reverse("admin:crm_churn_dashboard")).status_code == 200
    assert viewer_client.get(reverse("admin:coaching_retentionaction_changelist")).status_code == 200


def test_viewer_cannot_change_a_user(viewer_client, risky):
    url = reverse("admin:profiles_crmuserprofile_change", args=[risky.pk])
    page = viewer_client.get(url).content.decode()
    assert 'name="_save"' not in page  # read-only view
    assert 'name="age"' not in page
    response = viewer_client.post(url, {"age": 41, "engagement_tier": "gold"})
    assert response.status_code == 403
    risky.refresh_from_db()
    assert risky.age == 40


def test_viewer_cannot_erase_a_user(viewer_client, risky):
    url = reverse("admin:profiles_crmuserprofile_delete", args=[risky.pk])
    assert viewer_client.get(url).status_code == 403
    assert viewer_client.post(url, {"post": "yes"}).status_code == 403
    assert "delete_selected" not in _actions(viewer_client.get(CHANGELIST))
    assert CrmUserProfile.objects.filter(pk=risky.pk).exists()


def test_viewer_cannot_export(viewer_client, risky):
    page = viewer_client.get(CHANGELIST)
    assert "crm-export-csv" not in page.content.decode()
    actions = _actions(page)
    assert "export_selected_csv" not in actions
    assert "reassess_churn_risk" not in actions  # a write too
    assert viewer_client.get(EXPORT).status_code == 403
    response = viewer_client.post(CHANGELIST, {"action": "export_selected_csv", "_selected_action": [risky.pk]})
    assert response.status_code != 200 or not response.get("Content-Type", "").startswith("text/csv")
    assert not AuditLog.objects.filter(action="profiles.exported").exists()


def test_viewer_cannot_acknowledge_alerts_or_retry_syncs(viewer_client):
    for url in (reverse("admin:coaching_staffalert_changelist"), reverse("admin:sync_syncevent_changelist")):
        page = viewer_client.get(url)
        assert page.status_code == 200
        assert _actions(page) == set()


def test_viewer_reads_but_cannot_write_through_the_api(viewer, risky):
    client = APIClient()
    client.force_login(viewer)
    assert client.get("/api/crm/users").status_code == 200
    assert client.get(f"/api/crm/users/{risky.user_id}").status_code == 200
    response = client.put(f"/api/crm/users/{risky.user_id}", {"age": 41}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert client.delete(f"/api/crm/users/{risky.user_id}").status_code == 403
    risky.refresh_from_db()
    assert risky.age == 40


def test_staff_with_change_and_delete_rights_still_cannot_erase(client, editor, risky):
    # given staff who may change, delete and export profiles, but is not a superuser
    client.force_login(editor)
    url = reverse("admin:profiles_crmuserprofile_delete", args=[risky.pk])
    # then the erase is refused in admin (page, confirmation, bulk action) ...
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert "delete_selected" not in _actions(client.get(CHANGELIST))
    # ... and through the API with the staff session, while editing still works
    api = APIClient()
    api.force_login(editor)
    response = api.delete(f"/api/crm/users/{risky.user_id}")
    assert response.status_code == 403
    assert "superusers" in response.json()["error"]["message"]
    assert api.put(f"/api/crm/users/{risky.user_id}", {"age": 41}, format="json").status_code == 200
    assert client.get(EXPORT).status_code == 200
    assert CrmUserProfile.objects.filter(pk=risky.pk).exists()


def test_superuser_erases(client, risky):
    client.force_login(get_user_model().objects.create_superuser("root", "", "pw-123456789"))
    url = reverse("admin:profiles_crmuserprofile_delete", args=[risky.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not CrmUserProfile.objects.filter(pk=risky.pk).exists()


def test_every_crm_model_admin_is_reachable_by_the_viewer(viewer_client):
    for model in admin.site._registry:
        if model._meta.app_label in CRM_APPS:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert viewer_client.get(url).status_code == 200, url


def test_a_viewer_cannot_take_the_gdpr_export_through_the_api(viewer, editor, risky):
    viewer_api = APIClient()
    viewer_api.force_login(viewer)
    response = viewer_api.get(f"/api/crm/users/{risky.user_id}/export")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "Your staff account may view CRM data but not export it."
    assert not AuditLog.objects.filter(action="user.exported").exists()
    # staff with the export right may
    editor_api = APIClient()
    editor_api.force_login(editor)
    assert editor_api.get(f"/api/crm/users/{risky.user_id}/export").status_code == 200
