"""The webhook's fixed statements are prepared once per connection and reused with a generic plan;
the ORM's queries are never prepared (yahealthy_crm/sql.py `prepared_cursor`, docs/sync.md)."""

import json
import re

import pytest
from django.db import DataError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activities.models import UserActivity
from activities.queries import ACTIVITY_EVENT_CONTEXT_SQL, DELETED_LATER_SQL
from profiles.models import CrmUserProfile
from sync.models import SyncEvent
from tests.factories import FoodLogFactory, ProfileFactory
from tests.sync.support import URL, event, signed_headers
from yahealthy_crm import sql as sql_module
from yahealthy_crm.sql import prepared_cursor

pytestmark = pytest.mark.django_db(transaction=True)


def _prepared() -> dict[str, tuple[int, int]]:
    """This connection's prepared statements: SQL -> (generic plans, custom plans) used so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
        return {statement: (generic, custom) for statement, generic, custom in cursor.fetchall()}


def _post(client, external_id: str) -> None:
    body = json.dumps(
        event(user_id="prepared_user", external_id=external_id, payload={"food_name": "Oats", "calories": 350})
    )
    response = client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={**signed_headers(body), "Idempotency-Key": external_id},
    )
    assert response.status_code == 202, response.content


def _claim_statement(prepared: dict) -> str:
    [claim] = [sql for sql in prepared if "set_config('lock_timeout'" in sql]
    return claim


def test_the_claim_is_prepared_once_and_reused_with_a_generic_plan(client):
    ProfileFactory(user_id="prepared_user")
    for index in range(1, 4):  # a user's first events write other shapes (last_active_at moves)
        _post(client, f"prep_{index}")
    claim = _claim_statement(_prepared())
    before = _prepared()
    for index in range(4, 7):
        _post(client, f"prep_{index}")
    after = _prepared()
    assert set(after) == set(before), "the same statements again: nothing new prepared"
    generic, custom = after[claim]
    assert (generic - before[claim][0], custom) == (3, 0)
    # The server-bound statement carries placeholders, never the event's values.
    assert "$1" in claim
    assert "prepared_user" not in claim


def test_orm_queries_are_never_prepared(client):
    ProfileFactory(user_id="prepared_user")
    _post(client, "prep_orm")  # a connection that does prepare
    for _ in range(10):
        list(CrmUserProfile.objects.filter(user_id="prepared_user"))
    assert not [sql for sql in _prepared() if "crm_user_profiles" in sql and sql.lstrip().startswith("SELECT")]


def test_captured_queries_show_the_values(client):
    ProfileFactory(user_id="prepared_user")
    with CaptureQueriesContext(connection) as queries:
        _post(client, "prep_logged")
    claim = next(q["sql"] for q in queries.captured_queries if "set_config('lock_timeout'" in q["sql"])
    assert "'prepared_user'" in claim
    assert "$1" not in claim


@override_settings(DATABASE_PREPARED_STATEMENTS=False)
def test_switched_off_nothing_is_prepared():
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int + 41", [1])
        assert cursor.fetchone() == (42,)
    assert not [sql for sql in _prepared() if "+ 41" in sql]


def test_switched_on_a_statement_is_prepared_at_first_use():
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int + 40", [2])
        assert cursor.fetchone() == (42,)
    assert [sql for sql in _prepared() if "+ 40" in sql] == ["SELECT $1::int + 40"]


@pytest.fixture
def cursors_made(monkeypatch) -> list:
    """The preparing cursors `prepared_cursor` creates from now on."""
    made = []

    class Counted(sql_module._PreparingCursor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(sql_module, "_PreparingCursor", Counted)
    return made


def _text(*parts: str) -> str:
    return "".join(parts)  # an equal text, a new object each time (as statements_run builds them)


def _run(sql: str, params: list):
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_each_statement_text_keeps_its_cursor(cursors_made):
    doubled, tripled = ("SELECT %s::int", " * 2"), ("SELECT %s::int", " * 3")
    results = [_run(_text(*doubled), [1]), _run(_text(*tripled), [1]), _run(_text(*doubled), [5])]
    results += [_run(_text(*tripled), [5]), _run(_text(*doubled), [7])]
    assert results == [2, 3, 10, 15, 14]
    assert len(cursors_made) == 2  # one per text, for the connection's life
    held = [cursor for cursor in cursors_made if not cursor.closed]
    assert len(held) == 2


def test_a_nested_block_running_the_same_text_gets_a_cursor_of_its_own(cursors_made):
    doubled = "SELECT %s::int * 2"
    with prepared_cursor() as outer:
        outer.execute(doubled, [1])
        assert _run(doubled, [2]) == 4
        assert outer.fetchone() == (2,)  # the enclosing block's result is its own
    assert len(cursors_made) == 2
    assert [cursor.closed for cursor in cursors_made] == [False, True]  # the nested one is closed
    assert _run(doubled, [3]) == 6
    assert len(cursors_made) == 2  # the held cursor again


def test_a_new_connection_gets_new_cursors(cursors_made):
    assert _run("SELECT %s::int * 2", [1]) == 2
    connection.close()
    assert _run("SELECT %s::int * 2", [2]) == 4
    assert len(cursors_made) == 2
    assert cursors_made[0].connection.closed  # the old connection's
    assert not cursors_made[1].connection.closed


def test_a_statement_that_failed_leaves_its_cursor_usable(cursors_made):
    divided = "SELECT 10 / %s::int"
    with pytest.raises(DataError), transaction.atomic():
        _run(divided, [0])
    assert _run(divided, [5]) == 2
    assert len(cursors_made) == 1


def _generic_plan(sql: str, params: dict) -> str:
    """The plan PostgreSQL keeps for `sql` once prepared (generic: parameters unknown)."""
    names = list(params)
    numbered = re.sub(r"%\((\w+)\)s", lambda match: f"${names.index(match.group(1)) + 1}", sql)
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE generic_probe AS {numbered}")
        try:
            placeholders = ", ".join(["%s"] * len(names))
            cursor.execute(f"EXPLAIN EXECUTE generic_probe({placeholders})", list(params.values()))
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE generic_probe")


def test_the_activity_context_keeps_its_partial_indexes_under_a_generic_plan():
    # Many rows, so that only the index makes the lookup cheap.
    SyncEvent.objects.bulk_create(
        SyncEvent(
            direction="inbound",
            user_id=f"user_{index % 50}",
            entity_type="food_log",
            operation="delete" if index % 10 == 0 else "create",
            external_id=f"food_{index}",
            idempotency_key=f"plan_{index}",
            status="success",
            occurred_at=timezone.now(),
        )
        for index in range(3000)
    )
    profiles = ProfileFactory.create_batch(50)
    UserActivity.objects.bulk_create(
        FoodLogFactory.build(user=profiles[index % 50], external_id=f"food_{index}") for index in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_sync_events")
        cursor.execute("ANALYZE crm_user_activities")
    params = {"user_id": "user_1", "activity_type": "food_log", "external_id": "food_1", "occurred_at": timezone.now()}
    plan = _generic_plan(ACTIVITY_EVENT_CONTEXT_SQL, params)
    assert "crm_sync_app_deletes_idx" in plan, plan
    assert "crm_activity_unique_external_id" in plan, plan
    # The same "deleted later?" check in a presumed-new create's final write (activity_presumed_new_held).
    assert "crm_sync_app_deletes_idx" in _generic_plan(f"SELECT {DELETED_LATER_SQL}", params)
