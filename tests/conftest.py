import os
import socket
import time

import pytest
from django.db import connection

# Callers of the REST API (end users with JWTs, service keys, staff) for every test folder.
pytest_plugins = ["tests.api.support"]


def database_url(database: str | None = None) -> str:
    """A DATABASE_URL for a database on the server the tests use (the test database by default)."""
    params = connection.settings_dict
    name = database or params["NAME"]
    host = params["HOST"] or params.get("OPTIONS", {}).get("host", "")
    user = params["USER"]
    if host.startswith("/"):
        return f"postgres://{user}@/{name}?host={host}"
    password = f":{params['PASSWORD']}" if params["PASSWORD"] else ""
    return f"postgres://{user}{password}@{host or 'localhost'}:{params['PORT'] or 5432}/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_available(url: str = "redis://127.0.0.1:6379/0") -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def require_redis():
    """Redis tests run for real; outside CI they skip (with the reason) when no server is up."""
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail("Redis is required in CI (127.0.0.1:6379) but is not reachable")
        pytest.skip("no Redis on 127.0.0.1:6379 (set CI=true to make this a failure)")


def wait_for_fresh_rate_window(key_value: str, *, period: int = 60, needed_s: int = 15) -> None:
    """django-ratelimit counts in fixed windows; start a burst early in one so it cannot straddle two.

    During the whole second that starts at a window's end django-ratelimit still names the old window
    (its `w < ts` test), so after the boundary wait until that second is over too.
    """
    from django_ratelimit.core import _get_window

    left = _get_window(key_value, period) - time.time()
    if left < needed_s:
        time.sleep(left + 1.5)
