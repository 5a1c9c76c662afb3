"""Scheduling the embedding sweep after a commit: one task per burst, and a process that knows when the
queued sweep starts skips the shared flag (a cache round trip per event) until just before then."""

import threading
import time

import psycopg
import pytest
from celery.signals import before_task_publish
from django.core.cache import cache
from django.db import connection

from activities.models import UserActivity
from activities.queries import EMBED_SWEEP_LOCK_KEY
from activities.services import (
    EMBED_PENDING_TASK,
    EMBED_SWEEP_CLOCK_MARGIN_S,
    EMBED_SWEEP_DELAY_S,
    EMBED_SWEEP_FLAG,
    _SweepKnown,
    activity_embeddings_schedule,
    embedding_sweep_flag_clear,
)
from tests.factories import FoodLogFactory
from tests.support import database_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def published():
    tasks = []

    def count(sender=None, **kwargs):
        tasks.append(sender)

    before_task_publish.connect(count)
    embedding_sweep_flag_clear()
    yield tasks
    before_task_publish.disconnect(count)
    embedding_sweep_flag_clear()


def test_the_first_commit_schedules_a_sweep_and_notes_when_it_starts(published):
    before = time.time()
    activity_embeddings_schedule()

    assert published == [EMBED_PENDING_TASK]
    starts_at = cache.get(EMBED_SWEEP_FLAG)
    assert before + EMBED_SWEEP_DELAY_S <= starts_at <= time.time() + EMBED_SWEEP_DELAY_S
    assert _SweepKnown.starts_at == starts_at


def test_commits_before_the_known_start_skip_the_shared_flag(published):
    activity_embeddings_schedule()
    # With the flag gone, a commit that looked at it would schedule a second sweep and set it again.
    cache.delete(EMBED_SWEEP_FLAG)

    activity_embeddings_schedule()

    assert published == [EMBED_PENDING_TASK]
    assert cache.get(EMBED_SWEEP_FLAG) is None


def test_a_sweep_scheduled_by_another_process_is_learned_from_the_flag(published):
    # given another process's queued sweep, starting in a second
    cache.set(EMBED_SWEEP_FLAG, time.time() + 1.0, timeout=60)

    # a commit here finds the flag set: no second sweep; it learns when that sweep starts
    activity_embeddings_schedule()
    assert published == []
    cache.delete(EMBED_SWEEP_FLAG)
    activity_embeddings_schedule()

    assert published == []
    assert cache.get(EMBED_SWEEP_FLAG) is None


def test_close_to_the_known_start_the_flag_decides_again(published):
    # given a sweep known to start within the clock margin: it may already be reading
    _SweepKnown.starts_at = time.time() + EMBED_SWEEP_CLOCK_MARGIN_S / 2

    activity_embeddings_schedule()  # the flag is gone (that sweep started): schedule the next

    assert published == [EMBED_PENDING_TASK]


def test_the_sweep_itself_clears_the_flag_and_this_process_note(published):
    from activities.services import activities_embed_pending

    activity_embeddings_schedule()
    activities_embed_pending()

    assert _SweepKnown.starts_at == 0.0
    assert cache.get(EMBED_SWEEP_FLAG) is None
    activity_embeddings_schedule()
    assert published == [EMBED_PENDING_TASK, EMBED_PENDING_TASK]


def test_a_sweep_run_at_once_leaves_nothing_noted(published, celery_eager):
    # Eager mode runs the sweep inside the enqueue: the next commit must run another one.
    FoodLogFactory(embedding=None)
    activity_embeddings_schedule()
    assert not UserActivity.objects.filter(embedding__isnull=True).exists()

    FoodLogFactory(embedding=None)
    activity_embeddings_schedule()

    assert not UserActivity.objects.filter(embedding__isnull=True).exists()
    assert _SweepKnown.starts_at == 0.0


def test_a_failed_enqueue_forgets_the_sweep(published, monkeypatch):
    from activities import services

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(services, "task_enqueue", broker_down)
    activity_embeddings_schedule()

    assert _SweepKnown.starts_at == 0.0
    assert cache.get(EMBED_SWEEP_FLAG) is None  # the next commit tries again


def test_while_a_late_sweep_is_queued_a_commit_only_reads_the_flag(published, django_assert_num_queries):
    # given a sweep that should have started a while ago (the worker is busy or down): it is still
    # queued, and will read this commit when it starts
    cache.set(EMBED_SWEEP_FLAG, time.time() - 30.0, timeout=60)

    with django_assert_num_queries(1) as queries:  # without Redis the cache is a PostgreSQL table
        activity_embeddings_schedule()

    assert queries.captured_queries[0]["sql"].startswith("SELECT")
    assert published == []


@pytest.mark.django_db(transaction=True)
def test_the_sweep_clears_its_flag_only_after_the_event_transactions_that_may_have_read_it_commit():
    # A webhook event holds the sweep's lock shared from its claim to its commit; if it read the flag
    # as set it schedules nothing, so the sweep must not read rows before that commit.
    cache.set(EMBED_SWEEP_FLAG, time.time(), timeout=60)
    cleared = threading.Event()

    def sweep_starts():
        try:
            embedding_sweep_flag_clear()
            cleared.set()
        finally:
            connection.close()  # this thread's own connection

    with psycopg.connect(database_url()) as event_transaction:
        event_transaction.execute("SELECT pg_advisory_xact_lock_shared(%s)", [EMBED_SWEEP_LOCK_KEY])
        sweep = threading.Thread(target=sweep_starts)
        sweep.start()

        assert not cleared.wait(0.5)  # waiting for the event's commit
        assert cache.get(EMBED_SWEEP_FLAG) is not None
        event_transaction.commit()
        sweep.join(10)

    assert cleared.is_set()
    assert cache.get(EMBED_SWEEP_FLAG) is None
