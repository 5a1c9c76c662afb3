"""Batch intake (POST /api/crm/webhooks/app-events): per-event results under the single-event rules."""

import datetime as dt
import json
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from standardwebhooks import Webhook

from activities.models import UserActivity
from compliance.gdpr import gdpr_erase
from compliance.models import AuditLog
from goals.models import HealthGoal
from profiles.models import CrmUserProfile
from sync.api import BATCH_EXAMPLE_BODY, BATCH_EXAMPLE_HEADERS, BATCH_EXAMPLE_SECRET
from sync.inbound import batch
from sync.models import SyncEvent, SyncStatus
from sync.outbox import request_hash_compute
from tests.factories import GoalFactory, ProfileFactory
from tests.support import database_url, rate_window_seconds_left
from tests.sync.support import event, signed_headers

pytestmark = pytest.mark.django_db

BATCH_URL = "/api/crm/webhooks/app-events"
FOOD = {"food_name": "Chicken", "calories": 450, "protein": 45, "carbs": 50, "fat": 12, "date": "2025-12-28"}
T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def at(minutes: int) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


@pytest.fixture
def post_batch(client):
    """POST a signed batch; `raw` sends a body string as is."""

    def _post(events=None, *, raw=None, sign=True, **sign_kwargs):
        text = raw if raw is not None else json.dumps({"events": events})
        headers = signed_headers(text, **sign_kwargs) if sign else {}
        return client.post(BATCH_URL, data=text, content_type="application/json", headers=headers)

    return _post


def food(user_id="user_b1", external_id="food_1", minutes=0, **payload):
    return event(user_id=user_id, external_id=external_id, payload={**FOOD, **payload}, occurredAt=at(minutes))


def codes(body):
    return [r["error"]["code"] if r["status"] == "error" else r["result"]["status"] for r in body["results"]]


# --- Per-event results ----------------------------------------------------------------------------


def test_results_in_input_order_mix_success_stale_replay_errors(post_batch, post_event):
    ProfileFactory(user_id="user_gone")
    gdpr_erase(user_id="user_gone", actor_type="staff", actor_id="dpo")
    post_event(food(external_id="food_old", minutes=10), key="k_old")
    post_event(food(external_id="food_replay", minutes=1), key="k_replay")
    first_replay = SyncEvent.objects.get(idempotency_key="k_replay").response_body

    response = post_batch(
        [
            {**food(external_id="food_new", minutes=2), "idempotencyKey": "k_new"},
            {**food(external_id="food_old", minutes=5, calories=999, operation="update"), "idempotencyKey": "k_stale"},
            {**food(external_id="food_replay", minutes=1), "idempotencyKey": "k_replay"},
            {**food(external_id="food_bad", minutes=3, calories=-5), "idempotencyKey": "k_bad"},
            {**food(user_id="user_gone", minutes=3), "idempotencyKey": "k_gone"},
            {**food(external_id="food_replay", minutes=1, calories=800), "idempotencyKey": "k_replay"},
            "not an event",
        ]
    )

    assert response.status_code == 200
    body = response.json()
    assert codes(body) == [
        "success",
        "stale",
        "success",
        "validation_error",
        "user_erased",
        "idempotency_key_reused",
        "validation_error",
    ]
    results = body["results"]
    assert [r.get("idempotencyKey") for r in results[:6]] == [
        "k_new",
        "k_stale",
        "k_replay",
        "k_bad",
        "k_gone",
        "k_replay",
    ]
    assert results[0]["replayed"] is False
    assert results[0]["result"]["data"]["created"] is True
    assert results[0]["result"]["data"]["activityId"] == UserActivity.objects.get(external_id="food_new").pk
    assert results[1]["result"]["data"]["conflicts"][0]["reason"] == "stale"
    assert {k: v for k, v in results[2].items() if k != "replayed"} == first_replay
    assert results[2]["replayed"] is True
    assert results[3]["statusCode"] == 422
    assert "calories" in results[3]["error"]["details"]["payload"]
    assert results[4]["statusCode"] == 410
    assert results[5]["statusCode"] == 422
    assert body["counts"] == {"events": 7, "accepted": 3, "replayed": 1, "rejected": 4}
    # The stale update left the newer row; the invalid event is a failed sync event that frees its key.
    assert UserActivity.objects.get(external_id="food_old").calories_kcal == 450
    assert not UserActivity.objects.filter(external_id="food_bad").exists()
    assert SyncEvent.objects.get(idempotency_key="k_stale").status == SyncStatus.STALE
    assert not SyncEvent.objects.filter(idempotency_key="k_bad").exists()
    assert SyncEvent.objects.filter(status=SyncStatus.FAILED, external_id="food_bad").count() == 1
    assert not SyncEvent.objects.filter(user_id="user_gone").exists()
    # A stored batch response replays through the single endpoint too.
    single = post_event(food(external_id="food_new", minutes=2), key="k_new")
    assert single["Idempotent-Replayed"] == "true"
    assert single.json() == {k: v for k, v in results[0].items() if k != "replayed"}


def test_a_bad_event_never_fails_its_neighbours(post_batch):
    response = post_batch(
        [
            food(external_id="f1", minutes=1),
            event("goal", "update", user_id="user_b1", external_id="no_such_goal", payload={"goal_value": 5}),
            {**food(external_id="f2", minutes=2), "occurredAt": "not a time"},
            food(external_id="f3", minutes=3),
        ]
    )

    assert codes(response.json()) == ["success", "entity_not_found", "validation_error", "success"]
    assert set(UserActivity.objects.values_list("external_id", flat=True)) == {"f1", "f3"}
    # The refused goal event does not keep its key: the app can send it again once the goal exists.
    failed = SyncEvent.objects.get(entity_type="goal")
    assert failed.status == SyncStatus.FAILED
    assert failed.idempotency_key.startswith("rejected:")
    assert failed.response_body["error"]["code"] == "entity_not_found"


def test_create_without_external_id_is_named_by_its_key_or_the_message_id_and_index(post_batch):
    no_id = {k: v for k, v in food().items() if k not in ("externalId", "occurredAt")}
    response = post_batch([{**no_id, "idempotencyKey": "food_key_1"}, no_id], msg_id="msg_batch_7")

    results = response.json()["results"]
    assert [r["result"]["data"]["externalId"] for r in results] == ["food_key_1", "webhook:msg_batch_7:1"]
    assert results[1]["idempotencyKey"] == "webhook:msg_batch_7:1"
    # The same batch sent again (the sender's retry keeps its webhook-id) replays both.
    again = post_batch([{**no_id, "idempotencyKey": "food_key_1"}, no_id], msg_id="msg_batch_7")
    assert [r["replayed"] for r in again.json()["results"]] == [True, True]
    assert UserActivity.objects.count() == 2


def test_duplicate_key_inside_one_batch_is_a_replay_or_a_reuse(post_batch):
    same = {**food(external_id="f1"), "idempotencyKey": "dup"}
    response = post_batch([same, same, {**food(external_id="f1", calories=900), "idempotencyKey": "dup"}])

    results = response.json()["results"]
    assert codes(response.json()) == ["success", "success", "idempotency_key_reused"]
    assert results[0]["replayed"] is False
    assert results[1] == {**results[0], "replayed": True}
    assert results[2]["error"]["details"]["syncEventId"] == results[0]["result"]["data"]["syncEventId"]
    assert UserActivity.objects.get().calories_kcal == 450
    assert SyncEvent.objects.filter(idempotency_key="dup").count() == 1


# --- Ordering, ownership, side effects ------------------------------------------------------------


def test_events_of_one_user_apply_in_occurred_at_order(post_batch):
    response = post_batch(
        [
            food(external_id="f1", minutes=30, operation="update", calories=300),
            food(external_id="f1", minutes=10, calories=100),
            food(external_id="f1", minutes=20, operation="update", calories=200),
            food(user_id="user_b2", external_id="f1", minutes=5, calories=50),
        ]
    )

    results = response.json()["results"]
    assert codes(response.json()) == ["success", "success", "success", "success"]
    # Applied as 10 (create), 20, 30: the answers say so whatever the input order.
    assert [r["result"]["data"]["created"] for r in results] == [False, True, False, True]
    row = UserActivity.objects.get(user_id="user_b1")
    assert row.calories_kcal == 300
    assert row.source_updated_at == T0 + dt.timedelta(minutes=30)
    assert CrmUserProfile.objects.get(user_id="user_b1").last_active_at == T0 + dt.timedelta(minutes=30)
    assert {r["result"]["data"]["activityId"] for r in results[:3]} == {row.pk}
    # Audit: one profile creation per new user, one row per applied event.
    assert AuditLog.objects.filter(action="profile.created").count() == 2
    assert AuditLog.objects.filter(action__startswith="food_log.").count() == 4


def test_an_event_older_than_the_stored_row_is_stale_and_a_newer_one_applies(post_batch, post_event):
    post_event(food(external_id="f1", minutes=20, calories=200))

    response = post_batch(
        [
            food(external_id="f1", minutes=25, operation="update", calories=250),
            food(external_id="f1", minutes=15, operation="update", calories=150),
        ]
    )

    assert codes(response.json()) == ["success", "stale"]
    stale = response.json()["results"][1]["result"]["data"]["conflicts"][0]
    assert stale["storedUpdatedAt"] == (T0 + dt.timedelta(minutes=20)).isoformat()
    assert UserActivity.objects.get().calories_kcal == 250


def test_deletes_weigh_ins_profile_and_goal_events_go_through_the_domains(post_batch):
    profile = ProfileFactory(user_id="user_b1")
    GoalFactory(user=profile, metric="protein_g", goal_value=Decimal("90"))
    response = post_batch(
        [
            food(external_id="gone", minutes=1),
            event(user_id="user_b1", external_id="gone", operation="delete", occurredAt=at(2)),
            food(external_id="gone", minutes=0, operation="update"),  # older than the delete
            event("weight_log", user_id="user_b1", external_id="w1", payload={"weight_kg": 77.5}, occurredAt=at(3)),
            event("profile", "update", user_id="user_b1", payload={"age": 41}, occurredAt=at(4)),
            food(external_id="kept", minutes=5, protein=45, date=None),
        ]
    )

    assert codes(response.json()) == ["success"] * 6
    assert set(UserActivity.objects.values_list("external_id", flat=True)) == {"w1", "kept"}
    profile.refresh_from_db()
    assert profile.current_weight_kg == Decimal("77.5")
    assert profile.age == 41
    goal = HealthGoal.objects.get()
    assert goal.progress_pct == Decimal("50.00")
    kept = response.json()["results"][5]["result"]["data"]
    assert kept["goals"] == [{"goalId": goal.pk, "metric": "protein_g", "progressPct": 50.0, "streakDays": 0}]


SCENARIO = [
    food(external_id="a", minutes=1),
    food(external_id="a", minutes=3, operation="update", calories=600),
    food(external_id="a", minutes=2, operation="update", calories=500),
    food(user_id="user_b2", external_id="b", minutes=1, calories=100),
    event("water_log", user_id="user_b2", external_id="w", payload={"amount_ml": 250}, occurredAt=at(4)),
    event(user_id="user_b2", external_id="b", operation="delete", occurredAt=at(5)),
    food(user_id="user_b2", external_id="b", minutes=4, operation="update"),
    event("app_open", user_id="user_b3", external_id="", payload={"platform": "ios"}, occurredAt=at(6)),
    food(external_id="bad", minutes=1, calories=-1),
]


def _state():
    return {
        "activities": sorted(
            (a.user_id, a.activity_type, a.external_id, a.calories_kcal, a.water_ml, a.source_updated_at)
            for a in UserActivity.objects.all()
        ),
        "events": sorted(
            (e.idempotency_key if not e.idempotency_key.startswith("rejected:") else "rejected", e.status)
            for e in SyncEvent.objects.all()
        ),
        "last_active": sorted(CrmUserProfile.objects.values_list("user_id", "last_active_at")),
    }


def test_the_same_events_through_both_endpoints_end_in_the_same_state(post_batch, post_event, django_db_blocker):
    # The single endpoint gets them in occurredAt order (what the batch does per user) ...
    for body in sorted(SCENARIO, key=lambda e: e["occurredAt"]):
        post_event(body)
    single = _state()
    UserActivity.objects.all().delete()
    SyncEvent.objects.all().delete()
    CrmUserProfile.objects.all().delete()

    # ... the batch in input order.
    response = post_batch(SCENARIO)

    assert response.status_code == 200
    assert _state() == single


def test_a_user_erased_after_the_tombstone_check_is_not_recreated(post_batch, monkeypatch):
    ProfileFactory(user_id="user_late")
    check = batch._tombstones_check

    def check_then_erase(items):
        check(items)
        gdpr_erase(user_id="user_late", actor_type="staff", actor_id="dpo")

    monkeypatch.setattr(batch, "_tombstones_check", check_then_erase)

    response = post_batch([food(user_id="user_late", external_id="x1"), food(external_id="f1", minutes=1)])

    assert codes(response.json()) == ["user_erased", "success"]
    assert response.json()["results"][0]["statusCode"] == 410
    assert not CrmUserProfile.objects.filter(user_id="user_late").exists()
    assert not SyncEvent.objects.filter(user_id="user_late").exists()
    assert UserActivity.objects.get().external_id == "f1"


# --- Envelope -------------------------------------------------------------------------------------


def test_too_many_events_or_too_large_a_body_is_413_naming_both_limits(post_batch):
    too_many = post_batch([food(external_id=f"f{i}") for i in range(501)])
    too_large = post_batch([food(external_id="f1", food_name="x" * 200, note="y" * (1024 * 1024))])

    for response in (too_many, too_large):
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert "500 events" in error["message"]
        assert "1 MiB" in error["message"]
    assert not SyncEvent.objects.exists()


def test_envelope_failures_fail_the_whole_request(post_batch):
    assert post_batch([food()], sign=False).status_code == 401
    assert post_batch(raw="not json").json()["error"]["code"] == "malformed_json"
    missing = post_batch(raw=json.dumps({"event": []}))
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "validation_error"
    assert post_batch(raw=json.dumps({"events": {"a": 1}})).status_code == 422
    assert not SyncEvent.objects.exists()


# --- Rate limit -----------------------------------------------------------------------------------


def test_rate_limit_counts_events_not_requests(post_batch, post_event, rate_limit_clock):
    busy = [food(user_id="user_busy", external_id=f"f{i}", minutes=i % 60) for i in range(120)]
    calm = [food(user_id="user_calm", external_id=f"c{i}") for i in range(3)]

    response = post_batch(busy[:60] + calm + busy[60:])

    body = response.json()
    results = body["results"]
    busy_results = results[:60] + results[63:]
    assert [r["status"] for r in busy_results] == ["accepted"] * 100 + ["error"] * 20
    assert {r["error"]["code"] for r in busy_results[100:]} == {"rate_limited"}
    retry_after = rate_window_seconds_left("user_busy", now=rate_limit_clock)
    assert {r["error"]["details"]["retryAfterSeconds"] for r in busy_results[100:]} == {retry_after}
    assert int(response["Retry-After"]) == retry_after
    assert [r["status"] for r in results[60:63]] == ["accepted"] * 3
    assert UserActivity.objects.filter(user_id="user_busy").count() == 100
    # Single and batch share the counter: the busy user's next single event is refused as well.
    assert post_event(food(user_id="user_busy", external_id="late")).status_code == 429
    assert post_event(food(user_id="user_calm", external_id="late")).status_code == 202


# --- Statements per batch -------------------------------------------------------------------------


def _food_batch(tag: str, per_user: int) -> list[dict]:
    """10 users (5 with a profile and stored activities, 5 new), `per_user` food logs each: creates,
    and for the known users one update of a stored activity. External ids are unique across users:
    the seed's default key (`{entityType}:{externalId}:{operation}:{occurredAt}`) has no user in it."""
    events = []
    for number in range(10):
        user_id = f"user_{tag}_{number}"
        known = number < 5
        if known:
            profile = ProfileFactory(user_id=user_id)
            UserActivity.objects.create(
                user=profile,
                activity_type="food_log",
                external_id=f"stored_{tag}_{number}",
                occurred_at=T0,
                logged_date=T0.date(),
                source_updated_at=T0,
                calories_kcal=100,
            )
        for index in range(per_user):
            if known and index == 0:
                events.append(
                    food(user_id=user_id, external_id=f"stored_{tag}_{number}", minutes=1, operation="update")
                )
            else:
                events.append(food(user_id=user_id, external_id=f"{user_id}_{index}", minutes=index % 60))
    return events


def _statements(post_batch, events) -> tuple[list[str], list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = post_batch(events)
    assert response.json()["counts"]["accepted"] == len(events)
    # The test runs inside a transaction, so transaction.atomic() becomes SAVEPOINT / RELEASE
    # SAVEPOINT here (BEGIN/COMMIT outside tests): left out. The rate-limit counters (crm_cache)
    # are counted separately.
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    return [s for s in statements if "crm_cache" not in s], [s for s in statements if "crm_cache" in s]


def test_a_food_log_batch_costs_a_constant_number_of_statements(post_batch):
    large, large_cache = _statements(post_batch, _food_batch("l", 50))
    small, small_cache = _statements(post_batch, _food_batch("s", 5))

    assert UserActivity.objects.filter(user__user_id__startswith="user_l_").count() == 500
    # tombstones, keys stored? + ids, missing profiles, profile locks, stored activities, deleted-later
    # facts, activity ids, activity COPY, activity UPDATE, active goals?, last_active_at, audit COPY,
    # lock_timeout, events COPY
    assert len(large) == len(small) == 14, "\n".join(s[:100] for s in large)
    assert [s.split(" (")[0] for s in large if s.startswith("COPY")] == [
        "COPY crm_user_activities",
        "COPY crm_audit_log",
        "COPY crm_sync_events",
    ]
    # Rate-limit counters: every user of the batch in one upsert (no Redis), not one per user or event.
    assert len(large_cache) == len(small_cache) == 1
    # Users who all have a profile (the steady state): no missing-profiles INSERT (creates only, so no
    # activity UPDATE either).
    known, _ = _statements(post_batch, [food(user_id=f"user_l_{n}", external_id=f"again_{n}") for n in range(10)])
    assert not [s for s in known if s.startswith("INSERT INTO crm_user_profiles")], known
    assert len(known) == 12


def test_a_batch_of_new_keys_writes_each_event_once_and_one_with_a_stored_key_claims_them(post_batch, post_event):
    # New keys: each event's row is inserted finished (no claim, no UPDATE of crm_sync_events).
    fresh, _ = _statements(
        post_batch, [{**food(external_id=f"n_{n}", minutes=n), "idempotencyKey": f"n_{n}"} for n in range(3)]
    )
    assert not [s for s in fresh if s.startswith("UPDATE crm_sync_events")], fresh
    stored = SyncEvent.objects.get(idempotency_key="n_1")
    assert (stored.status, stored.response_status, stored.attempts) == (SyncStatus.SUCCESS, 202, 1)
    assert stored.processed_at is not None
    assert stored.created_at == stored.updated_at == stored.processed_at  # written once, finished
    assert stored.payload["payload"]["food_name"] == FOOD["food_name"]
    assert stored.response_body["result"]["data"]["syncEventId"] == stored.pk
    # One key stored already: the general path, which claims the keys and replays the stored one.
    assert post_event(food(external_id="s_0"), key="s_0").status_code == 202
    with CaptureQueriesContext(connection) as captured:
        answer = post_batch(
            [{**food(external_id="s_0"), "idempotencyKey": "s_0"}, {**food(external_id="s_1"), "idempotencyKey": "s_1"}]
        )
    assert [r["replayed"] for r in answer.json()["results"]] == [True, False]
    assert any(q["sql"].startswith("UPDATE crm_sync_events") for q in captured.captured_queries)
    assert SyncEvent.objects.get(idempotency_key="s_1").response_body["result"]["data"]["created"] is True


def test_copied_rows_keep_awkward_text_and_instants_exactly(post_batch):
    """COPY carries JSON and datetimes as text (sync.inbound.batch_queries._rows_copy): quotes,
    backslashes, tabs, newlines and emoji, and an offset with microseconds, come back as sent."""
    awkward = 'Crème "brûlée" \\ back\tslash\nnew line 🍮 \\N'
    occurred = "2026-11-20T17:30:00.123456+05:30"
    events = [
        {**food(external_id="awkward", food_name=awkward), "occurredAt": occurred, "idempotencyKey": "awkward"},
        {**food(user_id="user_b2", external_id="plain"), "idempotencyKey": "plain"},
    ]
    statements, _ = _statements(post_batch, events)
    assert any(s.startswith("COPY crm_sync_events") for s in statements), statements

    activity = UserActivity.objects.get(external_id="awkward")
    stored = SyncEvent.objects.get(idempotency_key="awkward")
    assert activity.payload["food_name"] == stored.payload["payload"]["food_name"] == awkward
    assert activity.occurred_at == stored.occurred_at == dt.datetime.fromisoformat(occurred)
    assert activity.logged_date == dt.date(2025, 12, 28)
    assert stored.created_at == stored.updated_at == stored.processed_at
    assert activity.created_at == activity.updated_at <= stored.processed_at
    audit = AuditLog.objects.get(entity_type="food_log", entity_id=str(activity.pk))
    assert audit.changes["syncEventId"] == stored.pk
    assert activity.created_at <= audit.created_at <= stored.processed_at


def test_a_key_committed_by_another_request_just_before_the_final_copy_sends_the_batch_the_general_way(
    post_batch,
):
    # Between the presumed path's "keys stored?" check and its final COPY, another request commits
    # one of the keys: the COPY fails on the unique key, the attempt is rolled back, and the general
    # path replays that key and applies the other event once.
    ProfileFactory(user_id="user_b1")
    twin = food(external_id="f_twin")
    stored = json.dumps({"status": "accepted", "idempotencyKey": "k_twin", "result": {"status": "success"}})

    def commit_twin_first(execute, sql, params, many, context):
        if sql.startswith("COPY crm_sync_events"):
            with psycopg.connect(database_url(), autocommit=True) as other:
                other.execute(
                    "INSERT INTO crm_sync_events (direction, user_id, entity_type, operation, external_id,"
                    " idempotency_key, request_hash, status, attempts, error, conflicts, payload, response_body,"
                    " response_status, occurred_at, webhook_id, created_at, updated_at) VALUES ('inbound',"
                    " 'user_b1', 'food_log', 'create', 'f_twin', 'k_twin', %s, 'success', 1, '', '[]', '{}', %s,"
                    " 202, now(), '', now(), now())",
                    [request_hash_compute(twin), stored],
                )
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(commit_twin_first), CaptureQueriesContext(connection) as captured:
            answer = post_batch(
                [{**twin, "idempotencyKey": "k_twin"}, {**food(external_id="f_new"), "idempotencyKey": "k_new"}]
            )
        assert answer.status_code == 200, answer.content
        assert [(r["status"], r["replayed"]) for r in answer.json()["results"]] == [
            ("accepted", True),
            ("accepted", False),
        ]
        assert any(q["sql"].startswith("UPDATE crm_sync_events") for q in captured.captured_queries)  # general path
        assert list(UserActivity.objects.filter(user_id="user_b1").values_list("external_id", flat=True)) == ["f_new"]
        assert SyncEvent.objects.get(idempotency_key="k_new").status == SyncStatus.SUCCESS
    finally:
        with psycopg.connect(database_url(), autocommit=True) as other:
            other.execute("DELETE FROM crm_sync_events WHERE idempotency_key = 'k_twin'")


def test_the_openapi_example_is_really_signed_and_documented(client):
    text = json.dumps(BATCH_EXAMPLE_BODY, separators=(",", ":"))
    signed_at = dt.datetime.fromtimestamp(int(BATCH_EXAMPLE_HEADERS["webhook-timestamp"]), tz=dt.UTC)
    signature = Webhook(BATCH_EXAMPLE_SECRET).sign(BATCH_EXAMPLE_HEADERS["webhook-id"], signed_at, text)
    assert signature == BATCH_EXAMPLE_HEADERS["webhook-signature"]

    operation = client.get("/api/schema", {"format": "json"}).json()["paths"]["/api/crm/webhooks/app-events"]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/BatchRequest")
    assert next(iter(body["examples"].values()))["value"] == BATCH_EXAMPLE_BODY
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/BatchResponse")
