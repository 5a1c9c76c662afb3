"""The hot path's named SQL functions, each on its own (sync/inbound/queries.py, activities/queries.py)."""

import pytest
from django.db import transaction
from django.utils import timezone

from activities.models import UserActivity
from activities.queries import activity_event_context_get, activity_insert_statement
from compliance.models import ErasureTombstone
from compliance.selectors import user_id_hash
from sync.inbound.queries import event_claim
from sync.models import SyncEvent
from tests.factories import FoodLogFactory, GoalFactory, ProfileFactory
from yahealthy_crm.sql import statements_run

pytestmark = pytest.mark.django_db


def _claim(user_id: str, key: str):
    return event_claim(
        user_id=user_id,
        user_id_hash=user_id_hash(user_id=user_id),
        entity_type="food_log",
        operation="create",
        external_id="f1",
        idempotency_key=key,
        request_hash="h",
        payload={"userId": user_id},
        occurred_at=timezone.now(),
        lock_wait="1s",
    )


def test_claim_returns_the_new_row_the_locked_profile_and_the_active_goal_metrics():
    profile = ProfileFactory(user_id="q_user")
    GoalFactory(user=profile, metric="protein_g")
    GoalFactory(user=profile, metric="calories_kcal", goal_unit="kcal", goal_value=2000, status="completed")

    with transaction.atomic():
        claim = _claim("q_user", "k1")

    assert claim.event_id == SyncEvent.objects.get(idempotency_key="k1").pk
    assert (claim.user_erased, claim.profile.pk, claim.profile.user_id) == (False, profile.pk, "q_user")
    assert claim.profile.field_provenance == {}  # JSON converted as the ORM would
    assert claim.active_goal_metrics == frozenset({"protein_g"})


def test_claim_of_an_existing_key_returns_no_row_and_locks_nothing():
    ProfileFactory(user_id="q_user")
    _claim("q_user", "k1")

    again = _claim("q_user", "k1")

    assert (again.event_id, again.profile) == (None, None)
    assert SyncEvent.objects.filter(idempotency_key="k1").count() == 1


def test_claim_for_a_new_or_erased_user():
    assert _claim("q_new", "k_new").profile is None
    ErasureTombstone.objects.create(user_id_hash=user_id_hash(user_id="q_gone"), erased_at=timezone.now())

    erased = _claim("q_gone", "k_gone")

    assert (erased.user_erased, erased.event_id) == (True, None)
    assert not SyncEvent.objects.filter(idempotency_key="k_gone").exists()


def test_activity_context_finds_the_stored_row_and_reserves_an_id_for_a_new_one():
    profile = ProfileFactory(user_id="q_user")
    stored = FoodLogFactory(user=profile, external_id="f1")

    found = activity_event_context_get(
        user_id="q_user", activity_type="food_log", external_id="f1", occurred_at=timezone.now()
    )
    missing = activity_event_context_get(
        user_id="q_user", activity_type="food_log", external_id="f2", occurred_at=timezone.now()
    )

    assert (found.existing.pk, found.existing.payload, found.deleted_later) == (stored.pk, stored.payload, False)
    assert missing.existing is None
    new = UserActivity(
        user=profile,
        activity_type="food_log",
        external_id="f2",
        source="app",
        occurred_at=timezone.now(),
        logged_date=timezone.localdate(),
        payload={"food_name": "x"},
    )
    new.pk = missing.new_id
    statements_run([activity_insert_statement(new)])
    assert UserActivity.objects.get(pk=missing.new_id).external_id == "f2"
