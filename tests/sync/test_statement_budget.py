"""The statement budget of the webhook hot path: a food_log create for a known user.

Counted on a real transaction (`transactional_db`), so after-commit work (the embedding sweep flag in
the shared cache) is counted too. Without Redis the rate-limit counter and the sweep flag are
statements on the PostgreSQL cache; with Redis they are not SQL at all.
"""

import json
import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activities.models import UserActivity
from activities.services import EMBED_SWEEP_FLAG, _SweepKnown
from goals.models import HealthGoal
from tests.factories import GoalFactory, ProfileFactory
from tests.support import require_redis
from tests.sync.support import URL, event, signed_headers

pytestmark = pytest.mark.django_db(transaction=True)

# claim (+ rate-limit count, profile lock, the new activity's id), final write (+ "is it new?"), sweep flag
BUDGET_WITHOUT_REDIS = 3
BUDGET_SQL_WITH_REDIS = 2  # claim (+ profile lock, the new activity's id), final write (+ "is it new?")


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


def _post_counted(client, body: dict, key: str):
    text = json.dumps(body)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            URL, data=text, content_type="application/json", headers={**signed_headers(text), "Idempotency-Key": key}
        )
    # BEGIN/COMMIT/ROLLBACK are transaction control, not statements of the budget; nor is the cache's purge of
    # expired rows, which one cache write in PURGE_EXPIRED_EVERY adds at random (a flaky count otherwise).
    return response, [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"] not in _TRANSACTION_CONTROL and not q["sql"].startswith('DELETE FROM "crm_cache" WHERE expires')
    ]


def _food_log(external_id: str) -> dict:
    return event(user_id="budget_user", external_id=external_id, payload={"food_name": "Oats", "calories": 350})


def test_a_food_log_create_for_a_known_user_takes_three_statements(client):
    ProfileFactory(user_id="budget_user")
    cache.clear()
    _post_counted(client, _food_log("warm_up"), "k_warm_up")  # the rate-limit window's row exists now

    response, statements = _post_counted(client, _food_log("f_1"), "k_1")

    assert response.status_code == 202, response.json()
    assert response.json()["result"]["data"]["created"] is True
    assert len(statements) <= BUDGET_WITHOUT_REDIS, "\n\n".join(s[:90] for s in statements)
    assert UserActivity.objects.filter(user_id="budget_user").count() == 2


def test_with_redis_the_same_create_takes_two_sql_statements(client, settings):
    require_redis()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/13"}
    }
    ProfileFactory(user_id="budget_user")

    response, statements = _post_counted(client, _food_log("f_1"), "k_redis_1")

    assert response.status_code == 202, response.json()
    assert len(statements) <= BUDGET_SQL_WITH_REDIS, "\n\n".join(statements)


def test_an_active_goal_on_the_metric_costs_its_recomputation_and_nothing_else(client):
    profile = ProfileFactory(user_id="budget_user")
    GoalFactory(user=profile, goal_type="nutrition", metric="calories_kcal", goal_value=2000, goal_unit="kcal")
    cache.clear()
    _post_counted(client, _food_log("warm_up"), "k_warm_up")

    response, statements = _post_counted(client, _food_log("f_1"), "k_1")

    assert response.status_code == 202
    assert response.json()["result"]["data"]["goals"][0]["metric"] == "calories_kcal"
    assert HealthGoal.objects.get().progress_pct > 0
    # + the activity insert run early, the goals, the daily totals, the goal's update
    assert len(statements) <= BUDGET_WITHOUT_REDIS + 4, "\n\n".join(statements)


def test_while_a_sweep_is_queued_the_final_write_reads_its_flag_and_nothing_runs_after_commit(client):
    # given a queued sweep that should have started (the worker is late): this process cannot skip
    # the flag on its own knowledge, but the final write reads it (the claim took the sweep's lock)
    ProfileFactory(user_id="budget_user")
    cache.clear()
    _post_counted(client, _food_log("warm_up"), "k_warm_up")
    cache.set(EMBED_SWEEP_FLAG, time.time() - 30.0, timeout=60)
    _SweepKnown.starts_at = 0.0

    response, statements = _post_counted(client, _food_log("f_1"), "k_1")

    assert response.status_code == 202, response.json()
    assert len(statements) == 2, "\n\n".join(s[:90] for s in statements)  # claim, final write
    assert "pg_advisory_xact_lock_shared" in statements[0]
    assert EMBED_SWEEP_FLAG in statements[-1]


def test_a_create_of_a_stored_external_id_is_rolled_back_and_applied_again_reading_it(client):
    # The rare case costs a rolled-back attempt: claim + final write, then claim, context, the update.
    ProfileFactory(user_id="budget_user")
    _post_counted(client, {**_food_log("f_1"), "occurredAt": "2026-11-20T12:00:00Z"}, "k_1")

    response, statements = _post_counted(client, {**_food_log("f_1"), "occurredAt": "2026-11-20T12:30:00Z"}, "k_2")

    assert response.status_code == 202, response.json()
    assert response.json()["result"]["data"]["created"] is False
    assert "presumed_new_activity" in statements[1]
    assert "presumed_new_activity" not in "".join(statements[2:])
    assert len(statements) <= BUDGET_WITHOUT_REDIS + 3, "\n\n".join(s[:90] for s in statements)
    assert UserActivity.objects.filter(user_id="budget_user").count() == 1
