"""The offline embedder: deterministic 384-d unit vectors, similar texts closer (sync and coach use it)."""

import math

import pytest

from activities.embeddings import embed_text_offline, embed_texts, embedding_provider
from activities.models import UserActivity
from activities.selectors import vector_search_by_user
from activities.services import activity_embedding_refresh, activity_text
from tests.factories import FoodLogFactory


def _cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_offline_vectors_are_deterministic_unit_vectors(settings):
    settings.OPENAI_API_KEY = ""
    first, second = embed_texts(["grilled chicken 450 kcal", "grilled chicken 450 kcal"])

    assert embedding_provider() == "offline"
    assert len(first) == 384
    assert first == second
    assert math.isclose(math.sqrt(sum(v * v for v in first)), 1.0, rel_tol=1e-9)


def test_similar_texts_are_closer_than_unrelated_ones():
    chicken = embed_text_offline("grilled chicken breast with rice")
    chicken_salad = embed_text_offline("chicken salad, grilled")
    sleep = embed_text_offline("slept seven hours, woke up twice")

    assert _cosine(chicken, chicken_salad) > _cosine(chicken, sleep) + 0.2


def test_empty_text_is_the_zero_vector():
    assert embed_text_offline("") == [0.0] * 384
    assert embed_texts([]) == []


@pytest.mark.django_db
def test_refresh_stores_the_embedding_and_search_finds_the_nearest():
    salmon = FoodLogFactory(payload={"food_name": "Baked salmon with potatoes"})
    FoodLogFactory(user=salmon.user, payload={"food_name": "Chocolate cake"})
    for activity in UserActivity.objects.all():
        assert activity_embedding_refresh(activity_id=activity.pk) is True

    query = embed_text_offline("salmon dinner")
    # The product's search (exact for a user this small); a bare ORDER BY <=> LIMIT on the HNSW index
    # can come back empty when the nearest index entries are rows other tests rolled back.
    nearest = vector_search_by_user(table="crm_user_activities", user_id=salmon.user_id, vector=query, limit=2)

    assert [row_id for row_id, _ in nearest][0] == salmon.pk
    assert len(nearest) == 2
    assert "Baked salmon with potatoes" in activity_text(salmon)
    assert "450 kcal" in activity_text(salmon)


@pytest.mark.django_db
def test_refresh_of_a_deleted_activity_does_nothing():
    activity = FoodLogFactory()
    activity_id = activity.pk
    activity.delete()

    assert activity_embedding_refresh(activity_id=activity_id) is False
