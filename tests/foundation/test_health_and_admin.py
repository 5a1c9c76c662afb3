import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.urls import reverse

from compliance.services import audit_record
from tests.factories import CoachingSessionFactory, FoodLogFactory, GoalFactory, InsightFactory, ProfileFactory


@pytest.mark.django_db
def test_healthz_reports_database_pgvector_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["pgvector"]["version"] >= "0.7"
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_BROKER_TRANSPORT_OPTIONS={})
def test_healthz_is_503_when_the_broker_is_down(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/crm/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_superuser("boss", "", "pw-123456789")
    client.force_login(admin)
    return client


ADMIN_MODELS = [
    ("profiles", "crmuserprofile"),
    ("goals", "healthgoal"),
    ("activities", "useractivity"),
    ("coaching", "aiinsight"),
    ("coaching", "coachingsession"),
    ("sync", "syncevent"),
    ("compliance", "auditlog"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "model"), ADMIN_MODELS)
def test_every_model_has_a_working_admin_list_with_search_and_filters(staff_client, app, model):
    profile = ProfileFactory(user_id="admin_user_1")
    GoalFactory(user=profile)
    FoodLogFactory(user=profile)
    InsightFactory(user=profile)
    CoachingSessionFactory(user=profile)
    audit_record(actor_type="staff", action="x.y", entity_type="profile", user_id=profile.user_id)
    url = reverse(f"admin:{app}_{model}_changelist")
    assert staff_client.get(url).status_code == 200
    assert staff_client.get(url, {"q": "admin_user_1"}).status_code == 200


@pytest.mark.django_db
def test_audit_log_is_read_only_in_admin(staff_client):
    row = audit_record(actor_type="staff", action="x.y", entity_type="profile", user_id="u1")
    assert staff_client.get(reverse("admin:compliance_auditlog_add")).status_code == 403
    detail = staff_client.get(reverse("admin:compliance_auditlog_change", args=[row.pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    delete = staff_client.post(reverse("admin:compliance_auditlog_delete", args=[row.pk]), {"post": "yes"})
    assert delete.status_code == 403


@pytest.mark.django_db
def test_admin_requires_login(client):
    response = client.get(reverse("admin:profiles_crmuserprofile_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
