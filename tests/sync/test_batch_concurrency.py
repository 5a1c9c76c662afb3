"""Concurrent batches sharing keys and (new) users over real HTTP: no deadlock, each event applied once."""

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

from activities.models import UserActivity
from profiles.models import CrmUserProfile
from sync.models import SyncEvent, SyncStatus
from sync.outbox import request_hash_compute
from tests.factories import ProfileFactory
from tests.support import database_url, lock_wait_await
from tests.sync.support import event, signed_headers
from tests.sync.test_concurrency import _post, threaded_live_server  # noqa: F401 - the fixture

BATCHES = 8


def test_concurrent_batches_with_shared_keys_in_any_order_apply_each_event_once(threaded_live_server, celery_eager):  # noqa: F811
    events = [
        {
            **event(
                user_id=f"user_race_{i % 4}",
                external_id=f"food_race_{i}",
                payload={"food_name": "Rice", "calories": 100 + i},
                occurredAt=f"2026-11-20T12:{i:02d}:00+00:00",
            ),
            "idempotencyKey": f"race_{i}",
        }
        for i in range(40)
    ]
    bodies = []
    for number in range(BATCHES):
        shuffled = events[:]
        random.Random(number).shuffle(shuffled)
        bodies.append(json.dumps({"events": shuffled}))
    barrier = threading.Barrier(BATCHES)
    url = f"{threaded_live_server}/api/crm/webhooks/app-events"

    with ThreadPoolExecutor(BATCHES) as pool:
        answers = list(pool.map(lambda body: _post(url, body, signed_headers(body), barrier), bodies))

    assert [status for status, _, _ in answers] == [200] * BATCHES, [body for _, _, body in answers]
    replayed = [r["replayed"] for _, _, body in answers for r in body["results"]]
    assert all(r["status"] == "accepted" for _, _, body in answers for r in body["results"])
    assert replayed.count(False) == len(events)  # each event applied by exactly one batch
    assert UserActivity.objects.count() == len(events)
    assert CrmUserProfile.objects.filter(user_id__startswith="user_race_").count() == 4
    assert SyncEvent.objects.filter(status=SyncStatus.SUCCESS).count() == len(events)


def test_a_batch_presumed_new_gives_way_to_a_request_holding_one_of_its_keys(threaded_live_server, celery_eager):  # noqa: F811
    # Another request (in the single endpoint's order: key, then profile) holds a key of the batch
    # uncommitted, then waits for the profile the batch has locked. The batch's final INSERT waits for
    # that key only briefly, rolls its attempt back (its profile lock with it) and takes the general
    # path, which waits for the key and replays it: no deadlock, no error, each event applied once.
    ProfileFactory(user_id="user_hold")
    twin = event(user_id="user_hold", external_id="f_hold", payload={"food_name": "Rice", "calories": 100})
    other = event(user_id="user_hold", external_id="f_new", payload={"food_name": "Oats", "calories": 90})
    body = json.dumps({"events": [{**twin, "idempotencyKey": "k_hold"}, {**other, "idempotencyKey": "k_new"}]})
    answer = {}

    def post_batch():
        url = f"{threaded_live_server}/api/crm/webhooks/app-events"
        answer["batch"] = _post(url, body, signed_headers(body), threading.Barrier(1))

    with psycopg.connect(database_url()) as holder, psycopg.connect(database_url(), autocommit=True) as monitor:
        holder.execute(
            "INSERT INTO crm_sync_events (direction, user_id, entity_type, operation, external_id, idempotency_key,"
            " request_hash, status, attempts, error, conflicts, payload, response_body, response_status,"
            " occurred_at, webhook_id, created_at, updated_at) VALUES ('inbound', 'user_hold', 'food_log', 'create',"
            " 'f_hold', 'k_hold', %s, 'success', 1, '', '[]', '{}', %s, 202, now(), '', now(), now())",
            [request_hash_compute(twin), json.dumps({"status": "accepted", "idempotencyKey": "k_hold"})],
        )
        poster = threading.Thread(target=post_batch)
        poster.start()
        lock_wait_await(monitor, "the batch's INSERT of the held key")
        # The batch holds the profile and waits for the key: this request now waits for the profile.
        holder.execute("SELECT 1 FROM crm_user_profiles WHERE user_id = 'user_hold' FOR UPDATE")
        holder.commit()
        poster.join(15)

    status, _, batch = answer["batch"]
    assert status == 200, batch
    assert [(r["status"], r["replayed"]) for r in batch["results"]] == [("accepted", True), ("accepted", False)]
    assert SyncEvent.objects.filter(user_id="user_hold").count() == 2
    assert UserActivity.objects.filter(user_id="user_hold").count() == 1  # f_new; f_hold was the holder's
