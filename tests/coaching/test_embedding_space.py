"""`embed_activities` keeps one embedder's vectors only: a changed embedder means clear and re-embed."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from activities.embeddings import embed_texts_with
from activities.models import ActivityType, EmbeddingSpace, UserActivity
from activities.selectors import activity_text
from coaching.models import CoachingSession
from coaching.selectors import coaching_session_text
from tests.coaching.support import log
from tests.factories import CoachingSessionFactory
from tests.support import USER_A

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(profile_a):
    for n, food in enumerate(("Chicken salad", "Oatmeal with berries", "Lentil soup")):
        log(profile_a, ActivityType.FOOD_LOG, n, {"food_name": food})
    CoachingSessionFactory(user_id=USER_A)


def _run(*args) -> str:
    out = StringIO()
    call_command("embed_activities", *args, stdout=out)
    return out.getvalue()


def _all_vectors_are(provider: str) -> bool:
    """Every stored vector is what `provider` gives for the row's text."""
    pairs = [(a.embedding, activity_text(a)) for a in UserActivity.objects.all()]
    pairs += [(s.embedding, coaching_session_text(s)) for s in CoachingSession.objects.all()]
    expected = embed_texts_with(provider, [text for _, text in pairs])
    return all(
        list(stored) == pytest.approx(vector, abs=1e-6) for (stored, _), vector in zip(pairs, expected, strict=True)
    )


def test_a_fresh_install_records_the_space_and_embeds_once(rows):
    output = _run()

    assert "embedded 3 activities and 1 coaching sessions (wordllama embedder)" in output
    assert "cleared" not in output
    assert list(EmbeddingSpace.objects.values_list("name", flat=True)) == ["wordllama:l2_supercat:256"]
    assert _all_vectors_are("wordllama")
    assert "embedded 0 activities and 0 coaching sessions" in _run()


def test_a_changed_embedder_clears_and_re_embeds_everything(rows, settings):
    _run()
    settings.EMBEDDING_PROVIDER = "hashing"

    output = _run()

    assert (
        "embedder wordllama:l2_supercat:256 -> hashing-v1:256: cleared 3 activity and 1 coaching-session vectors"
        in output
    )
    assert "embedded 3 activities and 1 coaching sessions (hashing embedder)" in output
    assert list(EmbeddingSpace.objects.values_list("name", flat=True)) == ["hashing-v1:256"]
    assert _all_vectors_are("hashing")


def test_vectors_stored_before_any_space_was_recorded_are_re_embedded(rows):
    # e.g. the worker's sweep embedded rows before the first `embed_activities` after an upgrade
    UserActivity.objects.update(embedding=[0.1] * 256)

    output = _run()

    assert "embedder unrecorded -> wordllama:l2_supercat:256: cleared 3 activity" in output
    assert _all_vectors_are("wordllama")


def test_reembed_forces_a_full_pass(rows):
    _run()

    output = _run("--reembed")

    assert "cleared 3 activity and 1 coaching-session vectors" in output
    assert "embedded 3 activities and 1 coaching sessions" in output
