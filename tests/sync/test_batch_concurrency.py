"""Concurrent batches sharing keys and (new) users over real HTTP: no deadlock, each event applied once."""

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

from activities.models import UserActivity
from profiles.models import CrmUserProfile
from sync.models import SyncEvent, SyncStatus
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
