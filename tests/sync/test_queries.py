"""The hot path's named SQL functions, each on its own (sync/inbound/queries.py, activities/queries.py)."""

import threading
import time

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from activities.models import UserActivity
from activities.queries import (
    _INSERTED_FIELDS,
    activity_event_context_get,
    activity_insert_statement,
    activity_presumed_new_held,
)
from activities.services import embedding_sweep_flag_clear
from compliance.models import ErasureTombstone
from compliance.selectors import user_id_hash
from sync.inbound.queries import event_claim
from sync.models import SyncEvent
from tests.factories import FoodLogFactory, GoalFactory, ProfileFactory
from tests.support import database_url, lock_wait_await
from tests.sync.support import inbound_event_store
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


def _presumed_new_insert(profile, external_id: str, occurred_at):
    """Run a presumed-new INSERT with its check in one statement; (held, rows with this external id)."""
    new = UserActivity(
        pk=UserActivity.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000,
        user=profile,
        activity_type="food_log",
        external_id=external_id,
        source="app",
        occurred_at=occurred_at,
        logged_date=occurred_at.date(),
        payload={"food_name": "new"},
    )
    check = activity_presumed_new_held(
        user_id=profile.user_id, activity_type="food_log", external_id=external_id, occurred_at=occurred_at
    )
    (held,) = statements_run([activity_insert_statement(new, presumed_new=True)], reads=(check,))
    return held, list(UserActivity.objects.filter(external_id=external_id).values_list("payload", flat=True))


def test_a_presumed_new_activity_is_inserted_only_when_nothing_is_stored_or_deleted_later():
    profile = ProfileFactory(user_id="q_user")
    FoodLogFactory(user=profile, external_id="f_stored", payload={"food_name": "stored"})
    now = timezone.now()
    inbound_event_store("k_gone", user_id="q_user", operation="delete", external_id="f_gone", occurred_at=now)

    assert _presumed_new_insert(profile, "f_new", now) == (True, [{"food_name": "new"}])
    # The stored row is left alone (no unique violation): the caller rolls back and reads the context.
    assert _presumed_new_insert(profile, "f_stored", now) == (False, [{"food_name": "stored"}])
    # Deleted by a newer event: the check fails (the caller's rollback removes the row inserted here).
    assert _presumed_new_insert(profile, "f_gone", now - timezone.timedelta(minutes=1))[0] is False
    assert _presumed_new_insert(profile, "f_gone2", now)[0] is True


@pytest.mark.parametrize(
    "values",
    [
        {"activity_type": "food_log", "calories_kcal": 450, "protein_g": 45.5, "payload": {"food_name": "Oats"}},
        {"activity_type": "weight_log", "weight_kg": "72.40", "payload": {}},
        {"activity_type": "water_log", "water_ml": 250, "payload": None, "external_id": ""},
        {"activity_type": "exercise", "exercise_minutes": 30, "calories_burned_kcal": 210, "steps": 4000},
    ],
)
def test_the_insert_parameters_are_what_the_orm_would_send(values):
    profile = ProfileFactory(user_id="q_user")
    now = timezone.now()
    activity = UserActivity(
        pk=99, user=profile, occurred_at=now, logged_date=now.date(), source_updated_at=now, **values
    )

    params = activity_insert_statement(activity).params

    expected = [f.get_db_prep_save(f.pre_save(activity, add=True), connection) for f in _INSERTED_FIELDS]
    assert [type(p) for p in params] == [type(p) for p in expected]
    assert [getattr(p, "obj", p) for p in params] == [getattr(p, "obj", p) for p in expected]  # Jsonb wraps


@pytest.mark.django_db(transaction=True)
def test_a_claim_waiting_on_the_profile_row_holds_up_no_embedding_sweep():
    # The claim takes the sweep's lock last: a claim stuck behind a GDPR erase's row lock must not make
    # the sweep wait (nor every other user's events, queued behind the sweep's request).
    ProfileFactory(user_id="q_busy")
    outcome = {}

    def claim_behind_the_erase():
        try:
            with transaction.atomic():
                outcome["claim"] = _claim("q_busy", "k_wait")
        finally:
            connection.close()

    with psycopg.connect(database_url()) as erase, psycopg.connect(database_url(), autocommit=True) as monitor:
        erase.execute("SELECT 1 FROM crm_user_profiles WHERE user_id = 'q_busy' FOR UPDATE")
        claimer = threading.Thread(target=claim_behind_the_erase)
        claimer.start()
        lock_wait_await(monitor, "the claim")

        started = time.monotonic()
        embedding_sweep_flag_clear()
        waited = time.monotonic() - started
        erase.rollback()
        claimer.join(10)

    assert waited < 0.5
    assert outcome["claim"].event_id is not None


def test_batch_documents_encode_as_djangos_json_encoder_does():
    import datetime as dt
    import json
    import uuid
    from decimal import Decimal

    from django.core.serializers.json import DjangoJSONEncoder
    from django.utils.translation import gettext_lazy

    from sync.inbound.batch_queries import _json_document
    from sync.models import SyncStatus

    at = dt.datetime(2026, 11, 28, 10, 30, 15, 123456, tzinfo=dt.UTC)
    row = {
        "status": SyncStatus.SUCCESS,  # a str subclass
        "payload": {"when": at, "day": at.date(), "time": at.time(), "kcal": Decimal("450.50"), "id": uuid.uuid4()},
        "note": gettext_lazy("Too many requests; slow down."),
        "text": "Crème brûlée \u2028 ☕",
        "numbers": [1, 2.5, 1e16, -0.0],
    }
    huge = {"payload": {"count": 10**30}}  # beyond 64 bits: orjson refuses, json.dumps does not

    for document in ([row], [huge]):
        assert json.loads(_json_document(document)) == json.loads(json.dumps(document, cls=DjangoJSONEncoder))
