"""Semantic context: activity search endpoint, coach retrieval, HNSW plan, session embeddings."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activities.embeddings import embed_texts
from activities.models import ActivityType, UserActivity
from activities.selectors import vector_search_by_user, vector_search_plan
from activities.services import activities_embed_pending
from coaching.models import CoachingSession
from tests.coaching.fake_openai import completion
from tests.coaching.support import ASK, log
from tests.factories import CoachingSessionFactory
from tests.support import USER_A, USER_B

pytestmark = pytest.mark.django_db
SEARCH = "/api/crm/users/{}/activities/search"
MEALS = [
    ("Grilled chicken breast with rice", "dinner"),
    ("Chicken caesar salad", "lunch"),
    ("Oatmeal with blueberries", "breakfast"),
    ("Greek yoghurt with honey", "snack"),
]


@pytest.fixture
def alice_logs(profile_a):
    rows = {}
    for n, (food, meal) in enumerate(MEALS):
        activity = log(profile_a, ActivityType.FOOD_LOG, n + 1, {"food_name": food, "meal_type": meal})
        rows[food] = activity.pk
    run = log(profile_a, ActivityType.EXERCISE, 1, {"exercise_type": "running"}, exercise_minutes=30)
    rows["running"] = run.pk
    assert activities_embed_pending() == len(rows)
    return rows


@pytest.fixture
def bob_chicken(profile_b):
    activity = log(profile_b, ActivityType.FOOD_LOG, 1, {"food_name": "Bob's chicken chicken chicken"})
    activities_embed_pending()
    return activity


def test_search_returns_the_users_nearest_activities(client_a, alice_logs, bob_chicken):
    response = client_a.get(SEARCH.format(USER_A), {"q": "chicken", "limit": 3})

    assert response.status_code == 200
    data = response.json()["data"]
    assert len(data) == 3
    assert {row["id"] for row in data[:2]} == {alice_logs["Grilled chicken breast with rice"], alice_logs[
        "Chicken caesar salad"]}  # fmt: skip
    assert all(row["user_id"] == USER_A for row in data)
    similarities = [row["similarity"] for row in data]
    assert similarities == sorted(similarities, reverse=True)


def test_search_validation_and_scope(client_a, client_b, alice_logs):
    assert client_a.get(SEARCH.format(USER_A)).status_code == 400
    assert client_a.get(SEARCH.format(USER_A), {"q": "x", "limit": 51}).status_code == 400
    assert client_b.get(SEARCH.format(USER_A), {"q": "chicken"}).status_code == 404


def test_hnsw_index_with_iterative_scan_serves_a_user_with_many_rows(profile_a, profile_b, alice_logs, monkeypatch):
    monkeypatch.setattr("activities.selectors.VECTOR_SEARCH_EXACT_MAX_ROWS", 1000)  # Alice counts as large
    # given: 3000 unrelated embeddings for Alice, 50 for Bob (random vectors generated in SQL)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO crm_user_activities (user_id, activity_type, external_id, source, occurred_at,
                logged_date, payload, embedding, created_at, updated_at)
            SELECT u, 'water_log', 'filler' || g, 'app', now(), current_date, '{}',
                   (SELECT array_agg(random() - 0.5) FROM generate_series(1, 256) WHERE g > 0)::vector, now(), now()
            FROM (VALUES (%s, 3000), (%s, 50)) AS owners(u, n), generate_series(1, n) g
            """,
            [USER_A, USER_B],
        )
        cursor.execute("ANALYZE crm_user_activities")
    query = embed_texts(["chicken dinner"])[0]

    # when
    plan = vector_search_plan(table="crm_user_activities", user_id=USER_A, vector=query, limit=5)
    with CaptureQueriesContext(connection) as queries:
        hits = vector_search_by_user(table="crm_user_activities", user_id=USER_A, vector=query, limit=5)

    # then
    assert "Index Scan using crm_activity_embedding_hnsw" in plan, plan
    assert "SET LOCAL hnsw.iterative_scan = relaxed_order" in [q["sql"] for q in queries.captured_queries]
    assert any("WITH nearest AS MATERIALIZED" in q["sql"] for q in queries.captured_queries)
    assert len(hits) == 5
    assert hits[0][0] == alice_logs["Grilled chicken breast with rice"]
    assert UserActivity.objects.filter(pk__in=[h[0] for h in hits]).exclude(user_id=USER_A).count() == 0


def test_a_user_with_few_rows_gets_an_exact_search(profile_a, alice_logs):
    with CaptureQueriesContext(connection) as queries:
        hits = vector_search_by_user(
            table="crm_user_activities", user_id=USER_A, vector=embed_texts(["chicken"])[0], limit=2
        )

    # their rows through the (user_id) INCLUDE (id, embedding) index, sorted by exact distance: nothing to miss
    exact_sql = queries.captured_queries[-1]["sql"]
    assert "+ 0 AS distance" in exact_sql
    assert "count(*) OVER ()" in exact_sql
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + exact_sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "hnsw" not in plan
    assert {hit[0] for hit in hits} == {alice_logs["Grilled chicken breast with rice"], alice_logs[
        "Chicken caesar salad"]}  # fmt: skip
    hits = vector_search_by_user(
        table="crm_user_activities", user_id=USER_A, vector=embed_texts(["oatmeal blueberries"])[0], limit=1
    )
    assert hits[0][0] == alice_logs["Oatmeal with blueberries"]


def test_the_model_gets_relevant_history_of_this_user_only(client_a, alice_logs, bob_chicken, fake_openai):
    past = CoachingSessionFactory(
        user_id=USER_A, message="Ideas for chicken dinners?", response="Try grilled chicken with vegetables."
    )
    CoachingSession.objects.filter(pk=past.pk).update(embedding=embed_texts([past.message + past.response])[0])
    fake_openai.script = [completion(content="Try the chicken again.")]

    response = client_a.post(ASK.format(USER_A), {"message": "What chicken meal should I cook?"}, format="json")

    assert response.status_code == 200
    context = json.loads(fake_openai.chat_requests[0]["messages"][1]["content"].split("\n", 1)[1])
    history = context["relevantHistory"]
    assert [item["kind"] for item in history].count("session") == 1
    activity_texts = [item["text"] for item in history if item["kind"] == "activity"]
    assert "Chicken caesar salad" in activity_texts[0] or "Grilled chicken" in activity_texts[0]
    assert all(item["text"].startswith(("food log", "exercise", "Asked:")) for item in history)
    assert not any("Bob" in item["text"] for item in history)


def test_embed_activities_backfills_missing_embeddings(profile_a, capsys):
    for n in range(3):
        log(profile_a, ActivityType.FOOD_LOG, n, {"food_name": f"meal {n}"}, calories_kcal=500)
    log(profile_a, ActivityType.APP_OPEN, 0)
    CoachingSessionFactory(user_id=USER_A)

    call_command("embed_activities", "--batch-size", "2")

    assert UserActivity.objects.filter(embedding__isnull=True).exclude(activity_type="app_open").count() == 0
    assert UserActivity.objects.get(activity_type="app_open").embedding is None
    assert CoachingSession.objects.filter(embedding__isnull=True).count() == 0
    assert "embedded 3 activities and 1 coaching sessions" in capsys.readouterr().out
