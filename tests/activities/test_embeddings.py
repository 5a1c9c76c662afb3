"""The embedders: WordLlama offline by default (256-d unit vectors, meaning), hashing kept as the
baseline, OpenAI with a key; the sweep and the search use the configured one."""

import datetime as dt
import math
import socket

import pytest
from django.utils import timezone

from activities import embeddings
from activities.embeddings import (
    embed_text_hashing,
    embed_texts,
    embed_texts_with,
    embedding_provider,
    embedding_space,
)
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


@pytest.fixture(autouse=True)
def _default_embedder(settings):
    settings.OPENAI_API_KEY = ""
    settings.EMBEDDING_PROVIDER = "auto"


def test_the_offline_default_is_wordllama_with_deterministic_256d_unit_vectors():
    first, second = embed_texts(["grilled chicken 450 kcal", "grilled chicken 450 kcal"])

    assert embedding_provider() == "wordllama"
    assert embedding_space() == "wordllama:l2_supercat:256"
    assert len(first) == 256
    assert first == second
    assert math.isclose(math.sqrt(sum(v * v for v in first)), 1.0, rel_tol=1e-6)


def test_wordllama_loads_from_the_wheel_without_network(monkeypatch):
    # given: a fresh load, and no socket can connect (a download attempt would fail loudly)
    embeddings.wordllama_model.cache_clear()

    def no_network(*args, **kwargs):
        raise AssertionError("the embedder tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.cache/wordllama to fall back on
    try:
        # when
        (vector,) = embed_texts_with("wordllama", ["grilled salmon"])
    finally:
        embeddings.wordllama_model.cache_clear()  # the next test loads it again with the network back

    # then
    assert len(vector) == 256


def test_wordllama_captures_meaning_that_hashing_misses():
    chicken, poultry, run = embed_texts_with(
        "wordllama", ["chicken salad", "grilled poultry with greens", "went for a 5k run"]
    )
    h_chicken, h_poultry, h_run = embed_texts_with(
        "hashing", ["chicken salad", "grilled poultry with greens", "went for a 5k run"]
    )

    # no word in common: only a model of meaning puts them close
    assert _cosine(chicken, poultry) > _cosine(chicken, run) + 0.2
    assert _cosine(h_chicken, h_poultry) < 0.1


def test_hashing_similar_texts_are_closer_than_unrelated_ones(settings):
    settings.EMBEDDING_PROVIDER = "hashing"
    chicken, chicken_salad, sleep = embed_texts(
        ["grilled chicken breast with rice", "chicken salad, grilled", "slept seven hours, woke up twice"]
    )

    assert embedding_space() == "hashing-v1:256"
    assert _cosine(chicken, chicken_salad) > _cosine(chicken, sleep) + 0.2


@pytest.mark.parametrize("provider", ["wordllama", "hashing"])
def test_empty_text_is_the_zero_vector(provider):
    assert embed_texts_with(provider, [""]) == [[0.0] * 256]
    assert embed_text_hashing("") == [0.0] * 256
    assert embed_texts([]) == []


def test_with_a_key_the_default_is_openai_asked_for_256_dimensions(settings):
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"

    assert embedding_provider() == "openai"
    assert embedding_space() == "openai:text-embedding-3-small:256"
    settings.EMBEDDING_PROVIDER = "wordllama"  # an explicit choice wins over the key
    assert embedding_provider() == "wordllama"


def test_an_unknown_embedder_is_refused(settings):
    settings.EMBEDDING_PROVIDER = "word2vec"
    with pytest.raises(ValueError, match="unknown embedder 'word2vec'"):
        embed_texts(["x"])


@pytest.mark.django_db
def test_the_sweep_stores_the_embeddings_and_search_finds_the_nearest():
    salmon = FoodLogFactory(payload={"food_name": "Baked salmon with potatoes"})
    FoodLogFactory(user=salmon.user, payload={"food_name": "Chocolate cake"})
    FoodLogFactory(user=salmon.user, activity_type="app_open", payload={})

    # app opens are never embedded; the sweep is safe to run again
    assert activities_embed_pending() == 2
    assert activities_embed_pending() == 0
    assert UserActivity.objects.get(activity_type="app_open").embedding is None

    query = embed_texts(["salmon dinner"])[0]
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
