"""Rate limits (design.md "Security model") on django-ratelimit and the shared cache.

Limits are keyed by the user the request is about, so one user's burst never throttles another.
"""

from __future__ import annotations

from django_ratelimit.core import get_usage

from yahealthy_crm.errors import RateLimitedError

AI_ASK_RATE = "10/m"
WEBHOOK_RATE = "100/m"
BULK_RATE = "1000/h"


def rate_limit_enforce(request, *, group: str, key_value: str, rate: str) -> None:
    """Count this request; raise a 429 (with Retry-After) when the caller is over `rate`."""
    usage = get_usage(request, group=group, key=lambda _group, _request: key_value, rate=rate, increment=True)
    if usage and usage["should_limit"]:
        raise RateLimitedError(retry_after_s=max(usage["time_left"], 1))
