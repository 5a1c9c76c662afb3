import pytest
from django.db import connection

from tests.factories import ProfileFactory


@pytest.mark.django_db
def test_nearest_neighbour_query_uses_the_hnsw_index():
    # given a few thousand activities with embeddings
    ProfileFactory(user_id="vec_user")
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO crm_user_activities (user_id, activity_type, external_id, source, occurred_at, logged_date,
                payload, embedding, created_at, updated_at)
            SELECT 'vec_user', 'food_log', 'v' || i, 'app', now(), current_date, '{}',
                   (SELECT array_agg(random())::vector(384) FROM generate_series(1, 384) WHERE i > 0), now(), now()
            FROM generate_series(1, 3000) AS i
        """)
        cursor.execute("ANALYZE crm_user_activities")
        query_vector = "[" + ",".join(["0.5"] * 384) + "]"
        # when we ask for the 10 nearest by cosine distance
        cursor.execute(
            "EXPLAIN SELECT id FROM crm_user_activities ORDER BY embedding <=> %s::vector LIMIT 10", [query_vector]
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM (SELECT id FROM crm_user_activities ORDER BY embedding <=> %s::vector LIMIT 10) t",
            [query_vector],
        )
        found = cursor.fetchone()[0]
    # then the planner walks the HNSW index and returns results
    assert "crm_activity_embedding_hnsw" in plan, plan
    assert found == 10
