"""The offline embedder: deterministic 384-d unit vectors, similar texts closer (sync and coach use it)."""

import datetime as dt
import math

import pytest
from django.utils import timezone

from activities.embeddings import embed_text_offline, embed_texts, embedding_provider
from activities.models import UserActivity
from activities.selectors import activity_text, vector_search_by_user
from activities.services import (
    activities_embed_pending,
    activities_missing_embedding,
    embeddings_backfill,
)
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
def test_the_sweep_stores_the_embeddings_and_search_finds_the_nearest():
    salmon = FoodLogFactory(payload={"food_name": "Baked salmon with potatoes"})
    FoodLogFactory(user=salmon.user, payload={"food_name": "Chocolate cake"})
    FoodLogFactory(user=salmon.user, activity_type="app_open", payload={})

    # app opens are never embedded; the sweep is safe to run again
    assert activities_embed_pending() == 2
    assert activities_embed_pending() == 0
    assert UserActivity.objects.get(activity_type="app_open").embedding is None

    query = embed_text_offline("salmon dinner")
    # The product's search (exact for a user this small); a bare ORDER BY <=> LIMIT on the HNSW index
    # can come back empty when the nearest index entries are rows other tests rolled back.
    nearest = vector_search_by_user(table="crm_user_activities", user_id=salmon.user_id, vector=query, limit=2)

    assert [row_id for row_id, _ in nearest][0] == salmon.pk
    assert len(nearest) == 2
    assert "Baked salmon with potatoes" in activity_text(salmon)
    assert "450 kcal" in activity_text(salmon)


@pytest.mark.django_db
def test_a_row_changed_while_its_batch_is_embedded_keeps_its_newer_state():
    changed, kept = FoodLogFactory(), FoodLogFactory()

    def text_while_the_app_updates(activity):
        # the app's update of `changed` commits between the batch's read and its UPDATE
        if activity.pk == changed.pk:
            UserActivity.objects.filter(pk=changed.pk).update(updated_at=timezone.now() + dt.timedelta(seconds=1))
        return activity_text(activity)

    stored = embeddings_backfill(activities_missing_embedding(), text_while_the_app_updates, check_updated=True)

    assert stored == 1
    assert UserActivity.objects.get(pk=kept.pk).embedding is not None
    # left for the next sweep, which embeds the new text
    assert UserActivity.objects.get(pk=changed.pk).embedding is None
    assert activities_embed_pending() == 1


@pytest.mark.django_db
def test_the_sweep_reads_its_rows_from_the_partial_index():
    from django.db import connection

    FoodLogFactory()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the planner show its options
    plan = activities_missing_embedding().defer("embedding").filter(pk__gt=0).order_by("pk")[:256].explain()

    assert "crm_activity_embed_pending_idx" in plan, plan
