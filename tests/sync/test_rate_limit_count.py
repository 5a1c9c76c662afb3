"""The webhook's rate-limit count, made by the idempotency claim itself when the counters are in
PostgreSQL (one round trip less per event). Every event counts once, whatever its answer, as when
the count came before everything else: refused, rolled back, invalid or for an erased user."""

import uuid

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from activities.models import UserActivity
from compliance.models import ErasureTombstone
from compliance.selectors import user_id_hash
from sync.inbound.intake import WEBHOOK_RATE_GROUP
from sync.inbound.queries import RATE_COUNT_FROM, event_claim
from sync.models import SyncEvent, SyncStatus
from tests.factories import ProfileFactory
from tests.sync.support import event
from yahealthy_crm.ratelimit import WEBHOOK_RATE, rate_limit_count_in_sql, rate_limit_counter_key

pytestmark = pytest.mark.django_db

FOOD = {"food_name": "Oats", "calories": 350}


def _user() -> str:
    return f"rl_{uuid.uuid4().hex[:10]}"  # a counter of this test only


def _count(user_id: str) -> int:
    key, _, _ = rate_limit_counter_key(group=WEBHOOK_RATE_GROUP, rate=WEBHOOK_RATE, key_value=user_id)
    return cache.get(key, 0)


def test_the_claim_counts_the_event_and_refuses_it_over_the_limit(rate_limit_clock):
    user = _user()
    ProfileFactory(user_id=user)
    cache.set(rate_limit_counter_key(group=WEBHOOK_RATE_GROUP, rate=WEBHOOK_RATE, key_value=user)[0], 99, 120)

    def claim(key):
        count = rate_limit_count_in_sql(
            group=WEBHOOK_RATE_GROUP, key_value=user, rate=WEBHOOK_RATE, from_sql=RATE_COUNT_FROM
        )
        with transaction.atomic():
            return event_claim(
                user_id=user,
                user_id_hash=user_id_hash(user_id=user),
                entity_type="food_log",
                operation="create",
                external_id=key,
                idempotency_key=key,
                request_hash="h",
                payload={},
                occurred_at=timezone.now(),
                lock_wait="1s",
                rate_count=count,
            )

    hundredth, over = claim("k_100"), claim("k_101")

    assert hundredth.rate_grant.allowed == 1
    assert hundredth.event_id is not None
    assert hundredth.profile.user_id == user
    assert over.rate_grant.allowed == 0
    assert (over.event_id, over.profile) == (None, None)  # nothing claimed, nothing locked
    assert over.rate_grant.retry_after_s >= 1
    assert not SyncEvent.objects.filter(idempotency_key="k_101").exists()
    assert _count(user) == 101


def test_events_refused_with_429_still_count(post_event, rate_limit_clock):
    user = _user()
    for n in range(100):
        assert post_event(event(user_id=user, external_id=f"f{n}", payload=FOOD)).status_code == 202

    refused = [post_event(event(user_id=user, external_id=f"x{n}", payload=FOOD)) for n in range(2)]

    assert [r.status_code for r in refused] == [429, 429]
    assert refused[0].json()["error"]["code"] == "rate_limited"
    assert refused[0]["Retry-After"]
    assert _count(user) == 102
    assert UserActivity.objects.filter(user_id=user).count() == 100
    assert not SyncEvent.objects.filter(user_id=user, external_id__startswith="x").exists()


def test_an_event_whose_transaction_rolls_back_counts_once(post_event, rate_limit_clock):
    user = _user()
    unknown_goal = post_event(event("goal", "progress", user_id=user, external_id="nope", payload={"progress_pct": 5}))
    applied = post_event(event(user_id=user, external_id="f1", payload=FOOD), key="k_reused")
    reused = post_event(event(user_id=user, external_id="f2", payload=FOOD), key="k_reused")

    assert unknown_goal.status_code == 422
    assert unknown_goal.json()["error"]["code"] == "entity_not_found"
    assert SyncEvent.objects.get(user_id=user, entity_type="goal").status == SyncStatus.FAILED
    assert applied.status_code == 202
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert _count(user) == 3


def test_a_create_of_a_stored_external_id_applied_again_counts_once(post_event, rate_limit_clock):
    # A create is first applied presuming its external id new; finding it stored, the transaction rolls
    # back (its count with it) and the event is applied again: one count, one sync event, one row.
    user = _user()
    first = post_event(event(user_id=user, external_id="f1", payload=FOOD, occurredAt="2026-11-20T12:00:00Z"))
    again = post_event(
        event(user_id=user, external_id="f1", payload={**FOOD, "calories": 500}, occurredAt="2026-11-20T12:05:00Z")
    )

    assert (first.status_code, again.status_code) == (202, 202), again.json()
    assert again.json()["result"]["data"]["created"] is False
    assert again.json()["result"]["data"]["activityId"] == first.json()["result"]["data"]["activityId"]
    assert UserActivity.objects.get(user_id=user).calories_kcal == 500
    assert SyncEvent.objects.filter(user_id=user).count() == 2
    assert _count(user) == 2


def test_an_invalid_event_counts_once_and_over_the_limit_is_refused_before_it_is_recorded(post_event, rate_limit_clock):
    user = _user()
    invalid = event(user_id=user, external_id="bad", payload={"food_name": "Oats"})  # no calories
    assert post_event(invalid).status_code == 422
    assert _count(user) == 1
    for n in range(99):
        assert post_event(event(user_id=user, external_id=f"f{n}", payload=FOOD)).status_code == 202

    over = post_event(invalid)

    assert over.status_code == 429
    assert SyncEvent.objects.filter(user_id=user, status=SyncStatus.FAILED).count() == 1  # the first only
    assert _count(user) == 101


def test_an_erased_users_event_counts_and_stores_nothing(post_event, rate_limit_clock):
    user = _user()
    ErasureTombstone.objects.create(user_id_hash=user_id_hash(user_id=user), erased_at=timezone.now())

    response = post_event(event(user_id=user, external_id="f1", payload=FOOD))

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "user_erased"
    assert not SyncEvent.objects.filter(user_id=user).exists()
    assert _count(user) == 1
