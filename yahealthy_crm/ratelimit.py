"""Rate limits (design.md "Security model") on django-ratelimit's counters in the shared cache.

Limits are keyed by the user the request is about, so one user's burst never throttles another.
Counting uses django-ratelimit's own cache key and fixed window (so every counter of a group is the
same one django-ratelimit would keep), with one cache write per call: `PostgresCache.incr_or_add_many`
without Redis (every key of a batch in one statement), add-then-incr with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import caches
from django_ratelimit import core as ratelimit_core

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


def rate_limit_take_many(*, group: str, rate: str, counts: dict[str, int]) -> dict[str, RateGrant]:
    """`rate_limit_take` for many keys at once (the batch webhook: its users' events), one cache write."""
    # django-ratelimit's helpers (pinned version): the same key and window as its decorator uses.
    limit, period = ratelimit_core._split_rate(rate)
    now = int(ratelimit_core.time.time())
    windows = {value: ratelimit_core._get_window(value, period) for value in counts}
    cache_keys = {
        value: ratelimit_core._make_cache_key(group, windows[value], rate, value, ratelimit_core.ALL)
        for value in counts
    }
    timeout = period + ratelimit_core.EXPIRATION_FUDGE
    increments = {cache_keys[value]: count for value, count in counts.items()}
    try:
        totals = _counters_add(caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")], increments, timeout)
    except redis.RedisError:
        # Redis unreachable: limits keep counting in PostgreSQL (same keys, same windows) rather than
        # refusing every webhook or letting every caller through. Counts start afresh there.
        logger.warning("rate limits: the cache is unreachable, counting in the database meanwhile")
        totals = _counters_add(caches[RATE_LIMIT_FALLBACK_CACHE], increments, timeout)
    grants = {}
    for value, count in counts.items():
        total = totals[cache_keys[value]]
        grants[value] = RateGrant(
            allowed=max(0, min(count, limit - (total - count))), retry_after_s=max(windows[value] - now, 1)
        )
    return grants


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
