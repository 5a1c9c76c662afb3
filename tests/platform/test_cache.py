import threading

import pytest
from django.core.cache import cache
from django.db import connections

from compliance.pii import hash_identifier, redact_pii, redact_pii_data


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("Contact me at jane.doe+fit@example.co.uk after lunch", "jane.doe+fit@example.co.uk"),
        ("My number is +44 20 7946 0958, call after 6", "7946 0958"),
        ("text me on (415) 555-2671 please", "555-2671"),
        ("Mobile: 0049 151 23456789.", "23456789"),
        ("email JOHN@EXAMPLE.COM or 415.555.2671", "415.555.2671"),
    ],
)
def test_redact_pii_replaces_contacts_by_keyed_hashes(text, leaked):
    redacted = redact_pii(text)
    assert leaked not in redacted
    assert "@example" not in redacted.lower()
    assert "[email:" in redacted or "[phone:" in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Ate 450 kcal with 45 g protein on 2025-12-28 at 12:30",
        "Weighed 82.5 kg, walked 10000 steps in 45 minutes",
        "Sets of 120 150 180 200 reps",
        "Logged on 28/12/2025",
    ],
)
def test_redact_pii_leaves_health_numbers_and_dates_alone(text):
    assert redact_pii(text) == text


def test_redaction_is_stable_and_recursive():
    payload = {"note": "ping me: a@b.io", "items": ["+1 415 555 2671", 42], "nested": {"k": "x@y.org"}}
    redacted = redact_pii_data(payload)
    assert redacted["items"][1] == 42
    assert redact_pii("a@b.io") == redact_pii("A@B.io ".strip().lower())
    assert "a@b.io" not in str(redacted)
    assert "x@y.org" not in str(redacted)
    assert "555" not in str(redacted)
    assert len(hash_identifier("a@b.io", kind="email")) == 64


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
