"""Rate limits (design.md "Security model") on django-ratelimit's counters in the shared cache.

Limits are keyed by the user the request is about, so one user's burst never throttles another.
Counting uses django-ratelimit's own cache key and fixed window (so every counter of a group is the
same one django-ratelimit would keep), with one cache write per call: `PostgresCache.incr_or_add_many`
without Redis (every key of a batch in one statement), add-then-incr with it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import caches
from django.utils.module_loading import import_string
from django_ratelimit import core as ratelimit_core

from yahealthy_crm.cache import PostgresCache
from yahealthy_crm.errors import RateLimitedError

logger = logging.getLogger(__name__)

# The PostgreSQL cache (table crm_cache, always migrated): where counters go while Redis is down.
RATE_LIMIT_FALLBACK_CACHE = "database"

AI_ASK_RATE = "10/m"
WEBHOOK_RATE = "100/m"
BULK_RATE = "1000/h"
# Admin login attempts: per client address, and per username across addresses (admin_login.py).
ADMIN_LOGIN_ADDRESS_RATE = "10/m"
ADMIN_LOGIN_USERNAME_RATE = "30/h"


@dataclass(frozen=True)
class RateGrant:
    allowed: int  # how many of the requested units fit under the limit
    retry_after_s: int  # when the window ends (for the units that did not fit)


def rate_limit_take(*, group: str, key_value: str, rate: str, count: int = 1) -> RateGrant:
    """Count `count` units (requests, events) for `key_value`; how many of them the limit allows."""
    return rate_limit_take_many(group=group, rate=rate, counts={key_value: count})[key_value]


def rate_limit_counter_key(*, group: str, rate: str, key_value: str) -> tuple[str, int, int]:
    """django-ratelimit's cache key for `key_value` in the current window, and the window's end (UNIX
    seconds) and the limit. Its helpers (pinned version): the same key and window its decorator uses."""
    return rate_limit_counter_keys(group=group, rate=rate, key_values=[key_value])[key_value]


def rate_limit_counter_keys(*, group: str, rate: str, key_values: Iterable[str]) -> dict[str, tuple[str, int, int]]:
    """`rate_limit_counter_key` of many values: django-ratelimit's `_make_cache_key` with its settings
    read and its rate parsed once, not per value (10 us a key; a batch has up to 500 users).
    tests/platform/test_ratelimit_keys.py compares the keys with the library's own."""
    limit, period = _rate_split(rate)
    head = f"{group}{limit}/{period}s"  # parts: group, safe rate, value, window, methods ('' for ALL)
    prefix = getattr(settings, "RATELIMIT_CACHE_PREFIX", "rl:")
    algorithm = getattr(settings, "RATELIMIT_HASH_ALGORITHM", hashlib.sha256)
    if isinstance(algorithm, str):
        algorithm = import_string(algorithm)
    keys = {}
    for value in key_values:
        window = ratelimit_core._get_window(value, period)
        keys[value] = prefix + algorithm(f"{head}{value}{window}".encode()).hexdigest(), window, limit
    return keys


@functools.cache
def _rate_split(rate: str) -> tuple[int, int]:
    return ratelimit_core._split_rate(rate)  # a regex per call; a few rates in all


def _retry_after_s(window: int) -> int:
    return max(window - int(ratelimit_core.time.time()), 1)


def _counter_timeout(rate: str) -> int:
    return _rate_split(rate)[1] + ratelimit_core.EXPIRATION_FUDGE


def rate_limit_take_many(*, group: str, rate: str, counts: dict[str, int]) -> dict[str, RateGrant]:
    """`rate_limit_take` for many keys at once (the batch webhook: its users' events), one cache write."""
    keys = rate_limit_counter_keys(group=group, rate=rate, key_values=counts)
    increments = {keys[value][0]: count for value, count in counts.items()}
    timeout = _counter_timeout(rate)
    try:
        totals = _counters_add(caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")], increments, timeout)
    except redis.RedisError:
        # Redis unreachable: limits keep counting in PostgreSQL (same keys, same windows) rather than
        # refusing every webhook or letting every caller through. Counts start afresh there.
        logger.warning("rate limits: the cache is unreachable, counting in the database meanwhile")
        totals = _counters_add(caches[RATE_LIMIT_FALLBACK_CACHE], increments, timeout)
    grants = {}
    for value, count in counts.items():
        cache_key, window, limit = keys[value]
        total = totals[cache_key]
        grants[value] = RateGrant(
            allowed=max(0, min(count, limit - (total - count))), retry_after_s=_retry_after_s(window)
        )
    return grants


@dataclass(frozen=True)
class RateCountInSql:
    """One unit counted by the caller's own SQL statement, in its transaction (the counters are rows of
    the PostgreSQL cache): `sql` is an INSERT ... RETURNING (cache_key, value) with the named
    parameters `params`, for a CTE. A transaction that rolls back has not counted."""

    sql: str
    params: dict
    limit: int
    window_ends_at: int

    def grant(self, total: int) -> RateGrant:
        """The verdict, from the counter's total that the statement returned."""
        return RateGrant(allowed=1 if total <= self.limit else 0, retry_after_s=_retry_after_s(self.window_ends_at))


def rate_limit_count_in_sql(*, group: str, key_value: str, rate: str, from_sql: str = "") -> RateCountInSql | None:
    """The count of one unit as SQL for the caller's statement, saving the counter's own round trip;
    None when the counters are not in PostgreSQL (Redis): then call `rate_limit_take` as usual."""
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    if not isinstance(cache, PostgresCache):
        return None
    cache_key, window, limit = rate_limit_counter_key(group=group, rate=rate, key_value=key_value)
    # The cache key is django-ratelimit's; the cache adds its own prefix and version, as for `incr`.
    sql, params = cache.counter_add_sql(cache_key, 1, _counter_timeout(rate), param_prefix="rate_", from_sql=from_sql)
    return RateCountInSql(sql=sql, params=params, limit=limit, window_ends_at=window)


def _counters_add(cache, increments: dict[str, int], timeout: int) -> dict[str, int]:
    if hasattr(cache, "incr_or_add_many"):
        return cache.incr_or_add_many(increments, timeout)
    totals = {}
    for key, count in increments.items():
        totals[key] = count if cache.add(key, count, timeout) else cache.incr(key, count)
    return totals


def rate_limit_enforce(request, *, group: str, key_value: str, rate: str) -> None:
    """Count this request; raise a 429 (with Retry-After) when the caller is over `rate`."""
    grant = rate_limit_take(group=group, key_value=key_value, rate=rate)
    if not grant.allowed:
        raise RateLimitedError(retry_after_s=grant.retry_after_s)
