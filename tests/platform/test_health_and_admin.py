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


@pytest.mark.django_db
def test_user_360_page_shows_every_part_of_the_user(staff_client):
    profile = ProfileFactory(user_id="u360")
    GoalFactory(user=profile)
    FoodLogFactory(user=profile, protein_g=45)
    InsightFactory(user=profile, title="Hydrate before lunch")
    CoachingSessionFactory(user=profile, message="How is my protein?")
    audit_record(actor_type="app", action="activity.created", entity_type="activity", user_id="u360")
    page = staff_client.get(reverse("admin:profiles_crmuserprofile_change", args=[profile.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for text in (
        "User 360",
        "activities 7d",
        "7-day average",
        "Hydrate before lunch",
        "How is my protein?",
        "activity.created",
        "food_log",
    ):
        assert text in html, text


@pytest.mark.django_db
def test_staff_edit_in_admin_goes_through_the_profile_service(staff_client):
    from compliance.models import AuditLog

    profile = ProfileFactory(user_id="u_edit", age=30)
    url = reverse("admin:profiles_crmuserprofile_change", args=[profile.pk])
    form = {
        "engagement_tier": "silver",
        "age": "31",
        "height_cm": "175.0",
        "current_weight_kg": "80.0",
        "activity_level": "moderate",
        "primary_goal": "general_health",
        "consent_ai_processing": "on",
    }
    response = staff_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    profile.refresh_from_db()
    assert profile.age == 31
    assert profile.field_provenance["age"]["verified"] is True
    row = AuditLog.objects.get(user_id="u_edit", action="profile.updated")
    assert row.actor_type == "staff"
    assert row.changes["age"] == {"old": 30, "new": 31}


@pytest.mark.django_db
def test_deleting_a_user_in_admin_is_a_gdpr_erase(staff_client):
    from compliance.selectors import user_is_erased
    from profiles.models import CrmUserProfile

    profile = ProfileFactory(user_id="u_forget")
    FoodLogFactory(user=profile)
    url = reverse("admin:profiles_crmuserprofile_delete", args=[profile.pk])
    assert staff_client.post(url, {"post": "yes"}).status_code == 302
    assert not CrmUserProfile.objects.filter(user_id="u_forget").exists()
    assert user_is_erased(user_id="u_forget")


@pytest.mark.django_db
def test_churn_list_filters_by_risk_band(staff_client):
    ProfileFactory(user_id="risky", churn_risk=0.9, churn_band="high")
    ProfileFactory(user_id="safe", churn_risk=0.1, churn_band="low")
    html = staff_client.get(
        reverse("admin:profiles_crmuserprofile_changelist"), {"churn_band": "high"}
    ).content.decode()
    assert "risky" in html
    assert ">safe<" not in html


@pytest.mark.django_db
def test_coaching_sessions_list_shows_and_finds_a_conversation(staff_client):
    profile = ProfileFactory(user_id="conversing_user")
    first = CoachingSessionFactory(user=profile, message="Help me set a protein goal.")
    CoachingSessionFactory(user=profile, conversation=first.conversation, message="Make it 110")
    CoachingSessionFactory(user=profile, message="Another conversation")
    url = reverse("admin:coaching_coachingsession_changelist")

    page = staff_client.get(url, {"q": str(first.conversation_id)})

    assert page.status_code == 200
    shown = {session.message for session in page.context["cl"].result_list}
    assert shown == {"Help me set a protein goal.", "Make it 110"}
    assert str(first.conversation_id) in page.content.decode()
