"""Rate limits (design.md "Security model") on django-ratelimit's counters in the shared cache.

Limits are keyed by the user the request is about, so one user's burst never throttles another.
Counting uses django-ratelimit's own cache key and fixed window (so every counter of a group is the
same one django-ratelimit would keep), with one cache write per count: `PostgresCache.incr_or_add`
without Redis, add-then-incr with it. The batch webhook counts several events at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django_ratelimit import core as ratelimit_core

from yahealthy_crm.errors import RateLimitedError

AI_ASK_RATE = "10/m"
WEBHOOK_RATE = "100/m"
BULK_RATE = "1000/h"


@dataclass(frozen=True)
class RateGrant:
    allowed: int  # how many of the requested units fit under the limit
    retry_after_s: int  # when the window ends (for the units that did not fit)


def rate_limit_take(*, group: str, key_value: str, rate: str, count: int = 1) -> RateGrant:
    """Count `count` units (requests, events) for `key_value`; how many of them the limit allows."""
    # django-ratelimit's helpers (pinned version): the same key and window as its decorator uses.
    limit, period = ratelimit_core._split_rate(rate)
    window = ratelimit_core._get_window(key_value, period)
    cache_key = ratelimit_core._make_cache_key(group, window, rate, key_value, ratelimit_core.ALL)
    cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    timeout = period + ratelimit_core.EXPIRATION_FUDGE
    if hasattr(cache, "incr_or_add"):
        total = cache.incr_or_add(cache_key, count, timeout)
    elif cache.add(cache_key, count, timeout):
        total = count
    else:
        total = cache.incr(cache_key, count)
    allowed = max(0, min(count, limit - (total - count)))
    return RateGrant(allowed=allowed, retry_after_s=max(window - int(ratelimit_core.time.time()), 1))


def rate_limit_enforce(request, *, group: str, key_value: str, rate: str) -> None:
    """Count this request; raise a 429 (with Retry-After) when the caller is over `rate`."""
    grant = rate_limit_take(group=group, key_value=key_value, rate=rate)
    if not grant.allowed:
        raise RateLimitedError(retry_after_s=grant.retry_after_s)
