"""The shared cache (PostgreSQL table unless Redis is configured): exact counters for rate limits."""

import threading

import pytest
from django.core.cache import cache
from django.db import connections


@pytest.mark.django_db(transaction=True)
def test_shared_cache_counts_concurrent_increments_exactly():
    # given a counter shared by processes (PostgreSQL cache when Redis is not configured)
    cache.delete("rl-test")
    assert cache.add("rl-test", 0, 60)
    assert not cache.add("rl-test", 0, 60)

    def bump():
        for _ in range(25):
            cache.incr("rl-test")
        connections.close_all()

    # when 8 threads increment 25 times each
    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then no increment is lost
    assert cache.get("rl-test") == 200


@pytest.mark.django_db
def test_shared_cache_never_evicts_live_counters_and_expires_old_ones():
    # more live keys than Django's default MAX_ENTRIES (300): none may be culled
    for number in range(400):
        assert cache.add(f"live-{number}", number, 60)
    assert cache.get("live-0") == 0
    assert cache.get("live-399") == 399
    assert cache.incr("live-5") == 6
    # an expired entry can be added again; set and touch behave as Django documents
    cache.set("old", "x", -1)
    assert cache.get("old") is None
    assert cache.add("old", "y", 60)
    assert cache.get("old") == "y"
    assert cache.touch("old", 120)
    assert not cache.touch("missing", 120)
    cache.set("forever", 1, None)
    assert cache.get("forever") == 1


@pytest.mark.django_db
def test_shared_cache_increments_in_one_statement_and_keeps_other_values_intact(django_assert_num_queries):
    # given a counter (stored as "#<n>") and values of other types (pickled)
    cache.set("counter", 41, 60)
    cache.set_many({"ratio": 1.5, "flag": True, "doc": {"kcal": [450, 520]}}, 60)

    # when the counter is incremented: one UPDATE, no read-then-write
    with django_assert_num_queries(1):
        assert cache.incr("counter") == 42

    # then every value reads back with its type; a float increments like Django's own incr
    assert cache.get_many(["counter", "ratio", "flag", "doc", "absent"]) == {
        "counter": 42,
        "ratio": 1.5,
        "flag": True,
        "doc": {"kcal": [450, 520]},
    }
    assert cache.get("flag") is True
    assert cache.incr("ratio", 2) == 3.5
    with pytest.raises(ValueError, match="not found"):
        cache.incr("absent")
    cache.set("gone", 1, -1)
    with pytest.raises(ValueError, match="not found"):
        cache.incr("gone")


@pytest.mark.django_db
def test_a_rate_counter_is_created_or_incremented_in_one_statement(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert cache.incr_or_add("rl:counter", 3, 60) == 3
    with django_assert_num_queries(1):
        assert cache.incr_or_add("rl:counter", 2, 60) == 5
    cache.set("rl:stale", 7, -1)  # expired: starts again from the delta
    assert cache.incr_or_add("rl:stale", 1, 60) == 1
    assert cache.get("rl:counter") == 5


@pytest.mark.django_db
def test_many_rate_counters_are_created_or_incremented_in_one_statement(django_assert_num_queries):
    cache.incr_or_add("rl:a", 5, 60)

    with django_assert_num_queries(1):
        totals = cache.incr_or_add_many({"rl:a": 2, "rl:b": 3, "rl:c": 1}, 60)

    assert totals == {"rl:a": 7, "rl:b": 3, "rl:c": 1}
    assert cache.get_many(["rl:a", "rl:b", "rl:c"]) == {"rl:a": 7, "rl:b": 3, "rl:c": 1}


@pytest.mark.django_db
def test_keys_need_only_fit_the_column():
    import warnings

    from django.core.cache.backends.base import InvalidCacheKey

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # memcached's rules (no spaces, at most 250) do not apply
        cache.set("a key with spaces " + "x" * 220, 1, 60)
        assert cache.get("a key with spaces " + "x" * 220) == 1
    with pytest.raises(InvalidCacheKey):
        cache.set("k" * 260, 1, 60)
