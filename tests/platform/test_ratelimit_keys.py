"""Our rate-limit counter keys are django-ratelimit's own (yahealthy_crm.ratelimit builds them faster)."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django_ratelimit import core as ratelimit_core

from yahealthy_crm.ratelimit import rate_limit_counter_key, rate_limit_counter_keys

VALUES = ["bench_user_1", "user-ä-ünïcode", "", "x" * 300, "a b\tc"]


@pytest.mark.parametrize("rate", ["100/m", "10/m", "1000/h", "5/s", "3/10m", "7/2h", "1/d"])
def test_keys_match_the_librarys(rate):
    keys = rate_limit_counter_keys(group="webhook", rate=rate, key_values=VALUES)
    limit, period = ratelimit_core._split_rate(rate)
    for value in VALUES:
        key, window, key_limit = keys[value]
        assert window == ratelimit_core._get_window(value, period)
        assert key == ratelimit_core._make_cache_key("webhook", window, rate, value, ratelimit_core.ALL)
        assert key_limit == limit
        assert rate_limit_counter_key(group="webhook", rate=rate, key_value=value) == keys[value]


@override_settings(RATELIMIT_CACHE_PREFIX="other:", RATELIMIT_HASH_ALGORITHM="hashlib.md5")
def test_keys_follow_the_librarys_settings():
    key, window, _ = rate_limit_counter_key(group="g", rate="100/m", key_value="u1")
    assert key.startswith("other:")
    assert key == ratelimit_core._make_cache_key("g", window, "100/m", "u1", ratelimit_core.ALL)
