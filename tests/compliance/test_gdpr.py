"""GDPR erase and export, and the append-only audit trail."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from activities.models import UserActivity
from coaching.models import AiInsight, CoachingConversation, CoachingSession
from compliance.models import AppendOnlyError, AuditLog, ErasureTombstone
from compliance.pii import hash_identifier
from compliance.services import audit_record
from goals.models import HealthGoal
from profiles.models import CrmUserProfile
from sync.models import SyncEvent
from tests.factories import CoachingSessionFactory, FoodLogFactory, GoalFactory, InsightFactory
from tests.support import USER_A, USER_B

pytestmark = pytest.mark.django_db
SEVEN_TABLES = (CrmUserProfile, HealthGoal, UserActivity, AiInsight, CoachingConversation, CoachingSession, SyncEvent)


def _populate(profile) -> dict[str, int]:
    """One or more rows of `profile` in every one of the seven tables; returns the primary keys."""
    goal = GoalFactory(user=profile, rationale="suggested by coach")
    activity = FoodLogFactory(user=profile, embedding=[0.01] * 256)
    session = CoachingSessionFactory(user=profile, embedding=[0.02] * 256)
    insight = InsightFactory(user=profile, coaching_session=session)
    sync_event = SyncEvent.objects.create(
        direction="inbound",
        user_id=profile.user_id,
        entity_type="food_log",
        operation="create",
        idempotency_key=f"food:{profile.user_id}:1",
        status="success",
        payload={"userId": profile.user_id, "payload": {"food_name": "Chicken"}},
    )
    audit = audit_record(
        actor_type="app",
        actor_id="app-backend",
        action="profile.updated",
        entity_type="profile",
        entity_id=profile.pk,
        user_id=profile.user_id,
        changes={"age": {"old": 29, "new": 30}},
    )
    return {
        "crm_user_profiles": profile.pk,
        "crm_health_goals": goal.pk,
        "crm_user_activities": activity.pk,
        "crm_ai_insights": insight.pk,
        "crm_coaching_conversations": session.conversation_id,
        "crm_coaching_sessions": session.pk,
        "crm_sync_events": sync_event.pk,
        "crm_audit_log": audit.pk,
    }


def _counts(user_id: str) -> dict[str, int]:
    counts = {model._meta.db_table: model.objects.filter(user_id=user_id).count() for model in SEVEN_TABLES}
    counts["crm_audit_log"] = AuditLog.objects.filter(user_id=user_id).count()
    return counts


def test_export_contains_a_row_of_every_table(client_a, profile_a, profile_b):
    # given rows of A and of B in all seven tables
    ids_a = _populate(profile_a)
    _populate(profile_b)
    # when A exports
    response = client_a.get(f"/api/crm/users/{USER_A}/export")
    # then every row of A is there, nothing of B
    assert response.status_code == 200
    export = response.json()["data"]
    assert export["userId"] == USER_A
    tables = export["tables"]
    assert set(tables) == set(ids_a)
    for table, pk in ids_a.items():
        assert [row["id"] for row in tables[table]] == [str(pk) if table == "crm_coaching_conversations" else pk], table
    assert USER_B not in response.content.decode()
    assert len(tables["crm_user_activities"][0]["embedding"]) == 256
    assert tables["crm_coaching_sessions"][0]["message"] == "How am I doing?"
    assert tables["crm_sync_events"][0]["payload"]["payload"] == {"food_name": "Chicken"}
    # and the export is audited, after the data was collected
    exported = AuditLog.objects.get(user_id=USER_A, action="user.exported")
    assert exported.actor_type == "user"
    assert exported.changes["activities"] == 1


def test_export_of_unknown_user_is_404(service_client):
    assert service_client.get("/api/crm/users/nobody/export").status_code == 404


def test_erase_removes_all_seven_tables_keeps_others_and_leaves_a_tombstone(service_client, profile_a, profile_b):
    # given
    _populate(profile_a)
    _populate(profile_b)
    assert set(_counts(USER_A).values()) == {1}
    before_b = _counts(USER_B)
    # when
    response = service_client.delete(f"/api/crm/users/{USER_A}")
    # then
    assert response.status_code == 204
    assert response.content == b""
    assert _counts(USER_A) == dict.fromkeys(before_b, 0)
    assert _counts(USER_B) == before_b
    assert not AuditLog.objects.filter(actor_type="user", actor_id=USER_A).exists()
    tombstone = ErasureTombstone.objects.get()
    assert tombstone.user_id_hash == hash_identifier(USER_A, kind="user_id")
    assert tombstone.actor_type == "app"
    assert tombstone.deleted_rows == {
        "insights": 1,
        "coachingSessions": 1,
        "coachingConversations": 1,
        "activities": 1,
        "goals": 1,
        "syncEvents": 1,
        "profile": 1,
        "auditLog": 1,
    }
    erased = AuditLog.objects.get(action="user.erased")
    assert erased.user_id == ""
    assert erased.entity_id == str(tombstone.pk)
    # nothing in the database still names the user
    with connection.cursor() as cursor:
        for table in ("crm_audit_log", "crm_erasure_tombstones", "crm_sync_events"):
            cursor.execute(f"SELECT count(*) FROM {table} WHERE row_to_json({table})::text LIKE %s", [f"%{USER_A}%"])
            assert cursor.fetchone()[0] == 0, table


def test_erase_is_idempotent_and_the_id_never_comes_back(service_client, profile_a):
    assert service_client.delete(f"/api/crm/users/{USER_A}").status_code == 204
    assert service_client.delete(f"/api/crm/users/{USER_A}").status_code == 204
    assert ErasureTombstone.objects.count() == 1
    for url in (
        f"/api/crm/users/{USER_A}",
        f"/api/crm/users/{USER_A}/export",
        f"/api/crm/users/{USER_A}/goals",
        f"/api/crm/users/{USER_A}/activities",
        f"/api/crm/users/{USER_A}/metrics",
        f"/api/crm/users/{USER_A}/nutrition-snapshot",
        f"/api/crm/audit-log/{USER_A}",
    ):
        assert service_client.get(url).status_code == 404, url
    recreate = service_client.post("/api/crm/users", {"user_id": USER_A}, format="json")
    assert recreate.status_code == 409
    assert recreate.json()["error"]["code"] == "user_erased"
    assert not CrmUserProfile.objects.filter(user_id=USER_A).exists()


def test_erase_of_unknown_user_is_404(service_client):
    response = service_client.delete("/api/crm/users/never_existed")
    assert response.status_code == 404
    assert ErasureTombstone.objects.count() == 0


def test_end_user_can_erase_themselves_tombstone_hashes_the_actor(client_a, client_b, profile_a):
    assert client_b.delete(f"/api/crm/users/{USER_A}").status_code == 404
    assert CrmUserProfile.objects.filter(user_id=USER_A).exists()
    assert client_a.delete(f"/api/crm/users/{USER_A}").status_code == 204
    tombstone = ErasureTombstone.objects.get()
    assert tombstone.actor_type == "user"
    assert tombstone.actor_id == hash_identifier(USER_A, kind="user_id")


def test_erased_user_is_gone_from_admin(admin_client, service_client, profile_a):
    _populate(profile_a)
    service_client.delete(f"/api/crm/users/{USER_A}")
    for url in (
        "/admin/profiles/crmuserprofile/",
        "/admin/compliance/auditlog/",
        "/admin/sync/syncevent/",
        "/admin/goals/healthgoal/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert USER_A not in response.content.decode(), url


def test_erase_is_one_transaction(service_client, profile_a, monkeypatch):
    _populate(profile_a)
    import compliance.gdpr as services

    def boom(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services.ErasureTombstone.objects, "create", boom)
    with pytest.raises(RuntimeError):
        services.gdpr_erase(user_id=USER_A, actor_type="app", actor_id="x")
    assert set(_counts(USER_A).values()) == {1}


def test_audit_log_is_append_only_in_orm_and_database(profile_a):
    row = audit_record(actor_type="system", action="x", entity_type="profile", user_id=USER_A)
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).update(action="y")
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).delete()
    for sql in ("UPDATE crm_audit_log SET action = 'y'", "DELETE FROM crm_audit_log"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditLog.objects.get(pk=row.pk).action == "x"


def test_audit_log_endpoint_newest_first_with_request_ids(service_client, staff_client, profile_a):
    service_client.put(f"/api/crm/users/{USER_A}", {"age": 31}, format="json", HTTP_X_REQUEST_ID="req-1")
    staff_client.put(f"/api/crm/users/{USER_A}", {"age": 32}, format="json", HTTP_X_REQUEST_ID="req-2")
    response = staff_client.get(f"/api/crm/audit-log/{USER_A}")
    assert response.status_code == 200
    body = response.json()
    assert [(e["actor_type"], e["request_id"]) for e in body["data"]] == [
        ("staff", "req-2"),
        ("app", "req-1"),
    ]
    assert body["data"][0]["changes"]["age"] == {"old": 31, "new": 32}
    assert body["pagination"]["count"] == 2
    assert service_client.get(f"/api/crm/audit-log/{USER_A}", {"limit": 1}).json()["pagination"]["nextOffset"] == 1
    assert service_client.get("/api/crm/audit-log/nobody").status_code == 404


def test_audit_log_has_no_write_endpoints(service_client, profile_a):
    audit_record(actor_type="system", action="x", entity_type="profile", user_id=USER_A)
    for method in ("post", "put", "patch", "delete"):
        response = getattr(service_client, method)(f"/api/crm/audit-log/{USER_A}")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
    assert AuditLog.objects.filter(user_id=USER_A).count() == 1


def test_audit_log_admin_is_read_only(admin_client, profile_a):
    row = audit_record(actor_type="system", action="x", entity_type="profile", user_id=USER_A)
    assert admin_client.get(f"/admin/compliance/auditlog/{row.pk}/delete/").status_code == 403
    response = admin_client.post(f"/admin/compliance/auditlog/{row.pk}/change/", {"action": "y"})
    assert response.status_code == 403
    assert AuditLog.objects.get(pk=row.pk).action == "x"
