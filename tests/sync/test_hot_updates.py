"""The webhook's row updates are HOT updates: they change no indexed column, so PostgreSQL writes the
new row version on the same page without new index entries (docs/sync.md "Benchmark").

Read from the counters of this connection's statistics not yet reported (rows updated, and of those
HOT), before and after the requests: the test's open transaction keeps them from being reported in
between. HOT also needs room on the page, which other tests' rows may have taken: the tables' fillfactor
is set to its minimum for the test (rolled back with it), so new rows go to pages with room, and a
non-HOT update here means an indexed column changed: the claim's status differs from the outcome, or
last_active_at got an index again.
"""

import json

import pytest
from django.db import connection

from profiles.models import CrmUserProfile
from sync.models import SyncEvent, SyncStatus
from tests.factories import ProfileFactory
from tests.sync.support import event, signed_headers

pytestmark = pytest.mark.django_db

TABLES = (SyncEvent._meta.db_table, CrmUserProfile._meta.db_table)


def _counters() -> dict[str, tuple[int, int]]:
    """{table: (rows updated, of which HOT)} counted by this connection and not yet reported."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t, pg_stat_get_xact_tuples_updated(t::regclass), pg_stat_get_xact_tuples_hot_updated(t::regclass)"
            " FROM unnest(%s::text[]) AS t",
            [list(TABLES)],
        )
        return {table: (updated, hot) for table, updated, hot in cursor.fetchall()}


@pytest.fixture
def updates():
    """A function: {table: (rows updated, of which HOT)} since the test started."""
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"ALTER TABLE {table} SET (fillfactor = 10)")  # rolled back with the test
    before = _counters()

    def since_start() -> dict[str, tuple[int, int]]:
        return {
            table: (updated - before[table][0], hot - before[table][1]) for table, (updated, hot) in _counters().items()
        }

    return since_start


def _post(client, url: str, body: dict, key: str | None = None):
    text = json.dumps(body)
    headers = {**signed_headers(text), **({"Idempotency-Key": key} if key else {})}
    return client.post(url, data=text, content_type="application/json", headers=headers)


def _food(external_id: str, minutes: int = 0) -> dict:
    return event(
        user_id="hot_user",
        external_id=external_id,
        occurredAt=f"2026-11-20T12:{minutes:02d}:00Z",
        payload={"food_name": "Oats", "calories": 350},
    )


def test_a_food_log_finishes_its_sync_event_and_moves_last_active_with_hot_updates(client, updates):
    ProfileFactory(user_id="hot_user")

    response = _post(client, "/api/crm/webhooks/app-event", _food("f_1"), key="hot_1")

    assert response.status_code == 202, response.json()
    assert SyncEvent.objects.get(idempotency_key="hot_1").status == SyncStatus.SUCCESS
    assert CrmUserProfile.objects.get(user_id="hot_user").last_active_at is not None
    assert updates() == dict.fromkeys(TABLES, (1, 1))


def test_a_batch_of_new_keys_updates_no_sync_event_and_moves_last_active_with_a_hot_update(client, updates):
    # Its events' rows are inserted finished (sync.inbound.batch "presumed new"), not claimed and updated.
    ProfileFactory(user_id="hot_user")
    events = [{**_food(f"f_{n}", minutes=n), "idempotencyKey": f"hot_b{n}"} for n in range(5)]

    response = _post(client, "/api/crm/webhooks/app-events", {"events": events})

    assert response.json()["counts"]["accepted"] == 5, response.json()
    assert updates() == {SyncEvent._meta.db_table: (0, 0), CrmUserProfile._meta.db_table: (1, 1)}


def test_a_stale_event_changes_its_status_and_a_delete_is_claimed_processing(client, updates):
    # The claim stores `success`; only the rarer outcomes change it (stale here). A delete is claimed
    # `processing`, so that a batch's later events never read it as a tombstone before it is applied.
    ProfileFactory(user_id="hot_user")
    assert _post(client, "/api/crm/webhooks/app-event", _food("f_1", minutes=5), key="k_new").status_code == 202
    stale = _post(client, "/api/crm/webhooks/app-event", _food("f_1", minutes=1), key="k_old")
    deleted = _post(
        client,
        "/api/crm/webhooks/app-event",
        event(user_id="hot_user", external_id="f_1", operation="delete", occurredAt="2026-11-20T12:09:00Z"),
        key="k_delete",
    )

    assert stale.json()["result"]["status"] == "stale"
    assert deleted.status_code == 202, deleted.json()
    statuses = dict(SyncEvent.objects.filter(user_id="hot_user").values_list("idempotency_key", "status"))
    assert statuses == {"k_new": "success", "k_old": "stale", "k_delete": "success"}
    updated, hot = updates()[SyncEvent._meta.db_table]
    # The stale finish and the delete's change the status: not HOT. The stale create was first applied
    # presumed new, and rolled back when its row was found stored: that attempt's finish counts too.
    assert (updated, hot) == (4, 2)
