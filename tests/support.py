"""Helpers shared by every test folder: callers of the REST API and the servers the tests talk to.

Fixtures live in tests/conftest.py; this module only holds plain functions and constants.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time

import jwt
import pytest
from django.db import connection
from rest_framework.test import APIClient

JWT_SECRET = "test-jwt-secret-of-sufficient-length-0123456789"
USER_A = "user_alice"
USER_B = "user_bob"


def make_jwt(sub: str, *, expires_in_s: int = 3600, secret: str = JWT_SECRET, algorithm: str = "HS256", **claims):
    now = dt.datetime.now(tz=dt.UTC)
    payload = {"sub": sub, "iat": now, "exp": now + dt.timedelta(seconds=expires_in_s), **claims}
    return jwt.encode(payload, secret, algorithm=algorithm)


def bearer_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


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


def rate_window_seconds_left(key_value: str, *, now: int, period: int = 60) -> int:
    """What django-ratelimit reports as Retry-After for `key_value` at `now` (its windows are jittered
    per key; `_get_window` is the library's own computation, read under the frozen clock)."""
    from django_ratelimit.core import _get_window

    return max(_get_window(key_value, period) - now, 1)


def lock_wait_await(monitor, what: str, *, seconds: float = 5) -> None:
    """Return once a backend of the test database waits on a lock (`monitor`: an autocommit psycopg
    connection); fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    ).fetchone()[0]:
        assert time.monotonic() < deadline, f"{what} never waited on a lock"
        time.sleep(0.005)
