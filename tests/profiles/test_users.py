"""POST/GET/PUT /api/crm/users...: validation, provenance, consent and audit."""

from __future__ import annotations

import pytest

from compliance.models import AuditLog
from profiles.models import CrmUserProfile
from tests.support import USER_A, bearer_client, make_jwt

pytestmark = pytest.mark.django_db
URL_A = f"/api/crm/users/{USER_A}"


def test_create_user_seed_example(service_client):
    # given the seed's integration test body
    response = service_client.post("/api/crm/users", {"user_id": "u_test", "age": 30}, format="json")
    # then
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "success"
    data = body["data"]
    assert data["user_id"] == "u_test"
    assert data["age"] == 30
    assert data["engagement_tier"] == "bronze"
    assert data["consent_ai_processing"] is True
    assert data["consent_marketing"] is False
    assert data["consent_ai_processing_at"] is not None
    assert data["consent_marketing_at"] is not None
    assert data["verified_fields"] == []
    assert data["field_provenance"]["age"]["source"] == "app"
    assert CrmUserProfile.objects.filter(user_id="u_test").count() == 1
    audit = AuditLog.objects.get(user_id="u_test")
    assert audit.action == "profile.created"
    assert audit.actor_type == "app"
    assert audit.actor_id.startswith("app-backend:")
    assert audit.changes["age"] == {"old": None, "new": 30}
    assert audit.request_id == response["X-Request-ID"]


def test_create_duplicate_is_409(service_client, profile_a):
    response = service_client.post("/api/crm/users", {"user_id": USER_A}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "user_exists"
    assert CrmUserProfile.objects.filter(user_id=USER_A).count() == 1


def test_create_stores_contact_details_only_as_hashes(service_client):
    response = service_client.post(
        "/api/crm/users",
        {"user_id": "u_mail", "email": "Jane.Doe@example.com", "phone": "+44 20 7946 0958"},
        format="json",
    )
    assert response.status_code == 201
    profile = CrmUserProfile.objects.get(user_id="u_mail")
    assert len(profile.email_hash) == 64
    assert len(profile.phone_hash) == 64
    audit = AuditLog.objects.get(user_id="u_mail")
    assert "Jane.Doe@example.com" not in str(audit.changes)
    assert "email" not in response.json()["data"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u1", "age": 12}, "age"),
        ({"user_id": "u1", "age": 121}, "age"),
        ({"user_id": "u1", "height_cm": 49.9}, "height_cm"),
        ({"user_id": "u1", "height_cm": 281}, "height_cm"),
        ({"user_id": "u1", "current_weight_kg": 19}, "current_weight_kg"),
        ({"user_id": "u1", "current_weight_kg": 501}, "current_weight_kg"),
        ({"user_id": "u1", "activity_level": "couch"}, "activity_level"),
        ({"user_id": "u1", "primary_goal": "fame"}, "primary_goal"),
        ({"user_id": "u1", "engagement_tier": "diamond"}, "engagement_tier"),
        ({"user_id": "u1", "agee": 30}, "agee"),
        ({"user_id": "u1", "churn_risk": 0.1}, "churn_risk"),
        ({"user_id": "bad id with spaces"}, "user_id"),
        ({"age": 30}, "user_id"),
    ],
)
def test_create_validation_errors_store_nothing(service_client, body, field):
    response = service_client.post("/api/crm/users", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["details"]) == [field]
    assert CrmUserProfile.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_malformed_json_is_400(service_client):
    response = service_client.post("/api/crm/users", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_non_object_body_is_400(service_client):
    response = service_client.post("/api/crm/users", [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_end_user_creates_only_their_own_profile(client_a):
    other = client_a.post("/api/crm/users", {"user_id": "someone_else"}, format="json")
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "permission_denied"
    own = client_a.post("/api/crm/users", {"user_id": USER_A, "age": 40}, format="json")
    assert own.status_code == 201
    assert (own.json()["data"]["user_id"], own.json()["data"]["age"]) == (USER_A, 40)
    assert AuditLog.objects.get(user_id=USER_A).actor_type == "user"


def test_partial_update_seed_example_audits_old_and_new(service_client, profile_a):
    body = {"age": 28, "height_cm": 180, "activity_level": "active", "engagement_tier": "gold"}
    response = service_client.put(URL_A, body, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["age"], data["height_cm"], data["activity_level"], data["engagement_tier"]) == (
        28,
        180.0,
        "active",
        "gold",
    )
    assert data["current_weight_kg"] == 80.0  # untouched
    audit = AuditLog.objects.get(user_id=USER_A, action="profile.updated")
    assert audit.changes == {
        "age": {"old": 30, "new": 28},
        "height_cm": {"old": 175.0, "new": 180.0},
        "activity_level": {"old": "moderate", "new": "active"},
        "engagement_tier": {"old": "bronze", "new": "gold"},
    }
    assert audit.actor_type == "app"


def test_update_validation_error_changes_nothing(service_client, profile_a):
    response = service_client.put(URL_A, {"age": 30, "height_cm": 300}, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["height_cm"]
    profile_a.refresh_from_db()
    assert profile_a.height_cm == 175
    assert AuditLog.objects.count() == 0


def test_update_rejects_user_id_and_unknown_fields(service_client, profile_a):
    response = service_client.put(URL_A, {"user_id": "other", "nickname": "x"}, format="json")
    assert response.status_code == 400
    assert sorted(response.json()["error"]["details"]) == ["nickname", "user_id"]


def test_update_unknown_user_is_404(service_client):
    response = service_client.put("/api/crm/users/nobody", {"age": 30}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_staff_write_marks_health_fields_verified_user_write_does_not(staff_client, client_a, profile_a):
    response = staff_client.put(URL_A, {"height_cm": 181.5, "age": 31}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["verified_fields"] == ["age", "height_cm"]
    assert data["field_provenance"]["height_cm"]["source"] == "staff"
    assert data["field_provenance"]["height_cm"]["verified"] is True
    staff_audit = AuditLog.objects.get(user_id=USER_A, actor_type="staff")
    assert staff_audit.actor_id == "carol"
    assert staff_audit.changes["verified_fields"] == {"old": None, "new": ["age", "height_cm"]}

    response = client_a.put(URL_A, {"current_weight_kg": 79.2}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["verified_fields"] == ["age", "height_cm"]
    assert data["field_provenance"]["current_weight_kg"] == {
        "source": "user",
        "verified": False,
        "updated_at": data["field_provenance"]["current_weight_kg"]["updated_at"],
    }


def test_verified_health_fields_can_only_be_changed_by_staff(staff_client, client_a, service_client, profile_a):
    verified = staff_client.put(URL_A, {"age": 31}, format="json")
    assert verified.status_code == 200
    assert verified.json()["data"]["verified_fields"] == ["age"]
    for caller in (client_a, service_client):
        response = caller.put(URL_A, {"age": 40, "activity_level": "active"}, format="json")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "field_verified_by_staff"
        assert response.json()["error"]["details"] == {"age": ["Verified by CRM staff."]}
    # resending the verified value itself is not a conflict
    resent = client_a.put(URL_A, {"age": 31, "activity_level": "active"}, format="json")
    assert resent.status_code == 200
    assert (resent.json()["data"]["age"], resent.json()["data"]["activity_level"]) == (31, "active")
    profile_a.refresh_from_db()
    assert (profile_a.age, profile_a.activity_level) == (31, "active")


def test_end_user_cannot_change_engagement_tier(client_a, profile_a):
    response = client_a.put(URL_A, {"engagement_tier": "platinum"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"fields": ["engagement_tier"]}
    profile_a.refresh_from_db()
    assert profile_a.engagement_tier == "bronze"


def test_consent_changes_are_timestamped_and_audited(client_a, profile_a):
    response = client_a.put(URL_A, {"consent_ai_processing": False, "consent_marketing": True}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["consent_ai_processing"] is False
    assert data["consent_marketing"] is True
    profile_a.refresh_from_db()
    audit = AuditLog.objects.get(user_id=USER_A, action="profile.updated")
    assert audit.actor_type == "user"
    assert audit.actor_id == USER_A
    assert audit.changes["consent_ai_processing"] == {"old": True, "new": False}
    assert audit.changes["consent_marketing"] == {"old": False, "new": True}
    assert audit.changes["consent_ai_processing_at"]["new"] == profile_a.consent_ai_processing_at.isoformat()
    assert audit.changes["consent_marketing_at"]["new"] == profile_a.consent_marketing_at.isoformat()


def test_unchanged_update_writes_no_audit_row(service_client, profile_a):
    response = service_client.put(URL_A, {"age": 30}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["age"] == 30
    assert AuditLog.objects.count() == 0


def test_audit_rows_redact_pii_in_changes(service_client, profile_a):
    from compliance.services import audit_changes, audit_row_build

    changes = audit_changes({"note": "call me"}, {"note": "mail jane@example.com or +1 415 555 2671"})
    row = audit_row_build(actor_type="staff", action="profile.update", entity_type="profile", changes=changes)
    assert "jane@example.com" not in str(row.changes)
    assert "415 555 2671" not in str(row.changes)
    assert row.changes["note"]["new"].startswith("mail [email:")
    assert row.changes["note"]["old"] == "call me"


def test_redaction_leaves_its_own_tokens_as_they_are():
    """Audit changes that pass through redaction twice (a caller's, then `audit_row_build`'s) are
    stored as after once."""
    from compliance.pii import redact_pii_data

    # 300 distinct tokens: their 16 hex characters take every mix of digits and letters.
    values = [f"+44 20 7946 {n:04d} or user{n}@example.co.uk, 0044 20 7946 {n:04d}" for n in range(300)]
    once = redact_pii_data({"note": {"old": None, "new": values}})
    assert all("[phone:" in value for value in once["note"]["new"])
    assert all("[email:" in value for value in once["note"]["new"])
    assert redact_pii_data(once) == once


def test_get_unknown_user_is_404_json(service_client):
    response = service_client.get("/api/crm/users/nobody")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_api_path_is_json_404(service_client):
    response = service_client.get("/api/crm/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_method_not_allowed_is_405_json(service_client, profile_a):
    response = service_client.patch(URL_A, {"age": 31}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_jwt_sub_other_user_cannot_update(profile_a, profile_b):
    client = bearer_client(make_jwt("user_bob"))
    response = client.put(URL_A, {"age": 50}, format="json")
    assert response.status_code == 404
    profile_a.refresh_from_db()
    assert profile_a.age == 30


def test_oversized_body_is_413(service_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = '{"user_id": "u_big", "age": 30, "x": "' + "y" * 20_000 + '"}'
    response = service_client.post("/api/crm/users", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert CrmUserProfile.objects.count() == 0


def test_unsupported_media_type_is_415(service_client):
    response = service_client.post("/api/crm/users", "user_id=u1", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize("user_id", ["a%00b", "x" * 65, "a%20b", "%C3%A9t%C3%A9"])
def test_malformed_user_ids_in_urls_are_json_404(service_client, user_id):
    for suffix in ("", "/goals", "/metrics", "/export"):
        response = service_client.get(f"/api/crm/users/{user_id}{suffix}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_browser_accept_header_still_gets_json_errors(anon_client):
    response = anon_client.get(URL_A, HTTP_ACCEPT="application/json")
    assert response["Content-Type"] == "application/json"
    assert response.status_code == 401
