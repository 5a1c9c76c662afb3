"""A Django cache in PostgreSQL whose writes are single upserts and whose counters increment atomically.

Used when REDIS_URL is not set: every local process (gunicorn workers, Celery) shares it, and
django-ratelimit's counters can neither lose increments nor be evicted early. Django's DatabaseCache
counts the whole table on every write and culls live entries past MAX_ENTRIES (which would reset
other users' rate-limit windows), and its `incr` is get-then-set, which loses counts under
concurrency. Here only expired rows are ever removed, occasionally, by the writers themselves.
"""

from __future__ import annotations

import base64
import datetime as dt
import pickle
import random

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django.utils import timezone

# One write in this many also deletes expired rows.
PURGE_EXPIRED_EVERY = 200
NEVER_EXPIRES = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
# Cache rows are disposable (a lost rate-limit count after a crash is harmless): their commits do not
# wait for the WAL flush, which keeps an fsync off every rate-limited request.
ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


class PostgresCache(DatabaseCache):
    def _encode(self, value) -> str:
        return base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")

    def _base_set(self, mode, key, value, timeout=DEFAULT_TIMEOUT):
        timeout = self.get_backend_timeout(timeout)  # an absolute UNIX time (or None: never)
        db = router.db_for_write(self.cache_model_class)
        table = connections[db].ops.quote_name(self._table)
        now = timezone.now()
        expires = NEVER_EXPIRES if timeout is None else dt.datetime.fromtimestamp(timeout, tz=dt.UTC)
        own_transaction = not connections[db].in_atomic_block
        with transaction.atomic(using=db), connections[db].cursor() as cursor:
            if own_transaction:  # never relax the durability of a caller's transaction
                cursor.execute(ASYNC_COMMIT)
            if mode == "touch":
                cursor.execute(
                    f"UPDATE {table} SET expires = %s WHERE cache_key = %s AND expires > %s",  # noqa: S608
                    [expires, key, now],
                )
                return cursor.rowcount > 0
            # `add` only replaces an expired entry; `set` always replaces.
            only_expired = " WHERE c.expires <= %s" if mode == "add" else ""
            cursor.execute(
                f"INSERT INTO {table} AS c (cache_key, value, expires) VALUES (%s, %s, %s) "  # noqa: S608
                f"ON CONFLICT (cache_key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires"
                f"{only_expired} RETURNING c.cache_key",
                [key, self._encode(value), expires, *([now] if mode == "add" else [])],
            )
            written = cursor.fetchone() is not None
            if random.randrange(PURGE_EXPIRED_EVERY) == 0:
                cursor.execute(f"DELETE FROM {table} WHERE expires <= %s", [now])  # noqa: S608
        return written

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        table = connections[db].ops.quote_name(self._table)
        own_transaction = not connections[db].in_atomic_block
        with transaction.atomic(using=db), connections[db].cursor() as cursor:
            if own_transaction:  # never relax the durability of a caller's transaction
                cursor.execute(ASYNC_COMMIT)
            # The row lock serialises concurrent increments of the same counter.
            cursor.execute(
                f"SELECT value FROM {table} WHERE cache_key = %s AND expires > %s FOR UPDATE",  # noqa: S608
                [key, timezone.now()],
            )
            row = cursor.fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found")
            new_value = pickle.loads(base64.b64decode(row[0].encode())) + delta  # noqa: S301
            cursor.execute(f"UPDATE {table} SET value = %s WHERE cache_key = %s", [self._encode(new_value), key])  # noqa: S608
        return new_value
