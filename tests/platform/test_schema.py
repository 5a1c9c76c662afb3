import os
import subprocess
import sys
import uuid
from decimal import Decimal

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from compliance.models import AppendOnlyError, AuditLog
from compliance.services import audit_record
from sync.models import SyncDirection, SyncEvent, SyncStatus
from tests.factories import GoalFactory, ProfileFactory
from tests.support import database_url

SEVEN_TABLES = {
    "crm_user_profiles",
    "crm_health_goals",
    "crm_user_activities",
    "crm_ai_insights",
    "crm_coaching_sessions",
    "crm_sync_events",
    "crm_audit_log",
}


def _dsn(database: str) -> str:
    return database_url(database).replace("postgres://", "postgresql://", 1)


@pytest.mark.django_db
def test_makemigrations_is_clean():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_migrations_apply_from_zero_on_an_empty_database():
    # given a brand-new empty database on the same server
    name = f"crm_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_dsn("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = database_url(name)
        # when every migration runs from zero in a separate process
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=settings.BASE_DIR,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stderr
        # then the seven tables and the vector extension exist
        with psycopg.connect(_dsn(name)) as fresh:
            tables = {row[0] for row in fresh.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            assert tables >= SEVEN_TABLES
            assert fresh.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    finally:
        with psycopg.connect(_dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db
def test_indexes_for_the_seed_queries_exist():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
        indexes = dict(cursor.fetchall())
    assert "(user_id, created_at DESC)" in indexes["crm_activity_user_created_idx"]
    assert "(user_id, created_at DESC)" in indexes["crm_audit_user_created_idx"]
    assert "(user_id, created_at DESC)" in indexes["crm_sync_user_created_idx"]
    assert "(user_id, created_at DESC)" in indexes["crm_session_user_created_idx"]
    assert "WHERE (dismissed_at IS NULL)" in indexes["crm_insight_user_open_idx"]
    assert "(user_id, status, created_at DESC)" in indexes["crm_goal_user_status_idx"]
    assert "(status)" in indexes["crm_sync_status_idx"]
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["crm_activity_embedding_hnsw"]
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["crm_session_embedding_hnsw"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("age", 12),
        ("age", 121),
        ("height_cm", Decimal("49.9")),
        ("height_cm", Decimal("280.1")),
        ("current_weight_kg", Decimal("19.9")),
        ("current_weight_kg", Decimal("500.1")),
        ("churn_risk", Decimal("1.001")),
        ("churn_risk", Decimal("-0.1")),
        ("engagement_tier", "diamond"),
        ("activity_level", "couch"),
        ("primary_goal", "world_peace"),
        ("user_id", ""),
    ],
)
def test_profile_constraints_reject_out_of_range_values(field, value):
    profile = ProfileFactory()
    setattr(profile, field, value)
    with pytest.raises(IntegrityError), transaction.atomic():
        profile.save()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("progress_pct", Decimal("100.01")),
        ("progress_pct", Decimal("-1")),
        ("goal_type", "happiness"),
        ("status", "paused"),
        ("priority", "urgent"),
        ("goal_value", Decimal("0")),
    ],
)
def test_goal_constraints_reject_out_of_range_values(field, value):
    goal = GoalFactory()
    setattr(goal, field, value)
    with pytest.raises(IntegrityError), transaction.atomic():
        goal.save()


@pytest.mark.django_db
def test_boundary_values_are_accepted():
    profile = ProfileFactory(age=13, height_cm=Decimal("280"), current_weight_kg=Decimal("20"), churn_risk=1)
    goal = GoalFactory(user=profile, progress_pct=100)
    profile.refresh_from_db()
    goal.refresh_from_db()
    assert (profile.age, goal.progress_pct) == (13, 100)


@pytest.mark.django_db
def test_audit_log_is_append_only_in_orm_and_database():
    row = audit_record(actor_type="system", action="test.done", entity_type="test")
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).update(action="tampered")
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).delete()
    for statement in ("UPDATE crm_audit_log SET action = 'x'", "DELETE FROM crm_audit_log"):
        with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditLog.objects.get(pk=row.pk).action == "test.done"


@pytest.mark.django_db
def test_json_documents_nobody_filters_on_are_left_out_of_analyze():
    # The webhook tables' JSON columns have no planner statistics (yahealthy_crm.migration_operations).
    with connection.cursor() as cursor:
        cursor.execute("SELECT attrelid::regclass::text, attname FROM pg_attribute WHERE attstattarget = 0")
        off = set(cursor.fetchall())
        assert off >= {
            ("crm_sync_events", "payload"),
            ("crm_sync_events", "response_body"),
            ("crm_sync_events", "conflicts"),
            ("crm_audit_log", "changes"),
            ("crm_user_activities", "payload"),
        }
        # ... and ANALYZE gathers none for them (the other columns keep theirs).
        cursor.execute(
            "INSERT INTO crm_audit_log (actor_type, actor_id, action, entity_type, entity_id, user_id, changes,"
            " request_id, created_at) SELECT 'system', 't', 'a', 'e', n::text, 'u' || n, jsonb_build_object('n', n),"
            " '', now()"
            " FROM generate_series(1, 200) n"
        )
        cursor.execute("ANALYZE crm_audit_log")
        cursor.execute("SELECT attname FROM pg_stats WHERE tablename = 'crm_audit_log'")
        analyzed = {row[0] for row in cursor.fetchall()}
    assert "changes" not in analyzed
    assert "user_id" in analyzed


@pytest.mark.django_db
def test_webhook_tables_have_no_like_indexes_and_profiles_leave_room_for_hot_updates():
    # Every row version entered these indexes; nothing runs LIKE 'prefix%' (profiles/0007, sync/0004).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s) AND indexdef LIKE '%%varchar_pattern_ops%%'",
            [["crm_user_profiles", "crm_sync_events"]],
        )
        assert cursor.fetchall() == []
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'crm_user_profiles'")
        assert cursor.fetchone()[0] == ["fillfactor=70"]


@pytest.mark.django_db
def test_status_lookups_use_the_partial_status_indexes():
    # The indexes leave out applied and delivered events (sync/0005); the lookups that list the rest
    # must still prove the indexes' conditions, or they would scan the table.
    with connection.cursor() as cursor:  # the test's transaction: a near-empty table would be scanned anyway
        cursor.execute("SET LOCAL enable_seqscan = off")
    failed = SyncEvent.objects.filter(status=SyncStatus.FAILED, direction=SyncDirection.INBOUND)
    dead_letters = SyncEvent.objects.filter(status=SyncStatus.DEAD_LETTER)
    outbound_due = SyncEvent.objects.filter(  # the overdue sweep's lookup (sync.delivery), as it runs
        direction=SyncDirection.OUTBOUND,
        status__in=[SyncStatus.PENDING, SyncStatus.RETRYING],
        next_attempt_at__lt=timezone.now(),
    )
    assert "crm_sync_status_idx" in failed.explain()
    assert "crm_sync_status_idx" in dead_letters.explain()
    assert "crm_sync_status_idx" not in SyncEvent.objects.filter(status=SyncStatus.SUCCESS).explain()
    # Both partial indexes hold the sweep's rows, and which one the planner picks depends on the
    # table's statistics (a full suite run flipped it): without the general one it must take its own.
    assert "_status_idx" in outbound_due.explain()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX crm_sync_status_idx")  # rolled back with the test's transaction
    assert "crm_sync_outbound_status_idx" in outbound_due.explain()
