"""The app's nearest-neighbour search (activities.selectors) walks the HNSW index for large users and
returns only that user's rows, nearest first."""

import pytest
from django.db import connection

from activities.models import UserActivity
from activities.selectors import vector_search_by_user, vector_search_plan
from tests.factories import ProfileFactory

DIMENSIONS = 256


@pytest.mark.django_db
def test_nearest_neighbour_search_uses_the_hnsw_index_and_stays_with_the_user(monkeypatch):
    monkeypatch.setattr("activities.selectors.VECTOR_SEARCH_EXACT_MAX_ROWS", 1000)  # vec_user counts as large
    # given: 3000 random embeddings for vec_user, one of them equal to the query; another user's row
    # equal to the query too
    ProfileFactory(user_id="vec_user")
    ProfileFactory(user_id="vec_other")
    query = [0.5 if n % 2 else -0.5 for n in range(DIMENSIONS)]
    literal = "[" + ",".join(str(value) for value in query) + "]"
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO crm_user_activities (user_id, activity_type, external_id, source, occurred_at, logged_date,
                payload, embedding, created_at, updated_at)
            SELECT 'vec_user', 'food_log', 'v' || i, 'app', now(), current_date, '{}',
                   (SELECT array_agg(random() - 0.5)::vector(256) FROM generate_series(1, 256) WHERE i > 0),
                   now(), now()
            FROM generate_series(1, 3000) AS i
        """)
        cursor.execute(
            """
            INSERT INTO crm_user_activities (user_id, activity_type, external_id, source, occurred_at, logged_date,
                payload, embedding, created_at, updated_at)
            VALUES ('vec_user', 'food_log', 'twin', 'app', now(), current_date, '{}', %s::vector, now(), now()),
                   ('vec_other', 'food_log', 'twin', 'app', now(), current_date, '{}', %s::vector, now(), now())
            """,
            [literal, literal],
        )
        cursor.execute("ANALYZE crm_user_activities")
    twin = UserActivity.objects.get(user_id="vec_user", external_id="twin")

    # when: the 10 nearest of vec_user by cosine distance
    plan = vector_search_plan(table="crm_user_activities", user_id="vec_user", vector=query, limit=10)
    hits = vector_search_by_user(table="crm_user_activities", user_id="vec_user", vector=query, limit=10)

    # then: the planner walks the HNSW index, the twin comes first, nothing of the other user
    assert "crm_activity_embedding_hnsw" in plan, plan
    assert len(hits) == 10
    assert hits[0][0] == twin.pk
    assert hits[0][1] == pytest.approx(0.0, abs=1e-6)
    distances = [distance for _, distance in hits]
    assert distances == sorted(distances)
    assert set(
        UserActivity.objects.filter(pk__in=[row_id for row_id, _ in hits]).values_list("user_id", flat=True)
    ) == {"vec_user"}
