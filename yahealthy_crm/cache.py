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
import functools
import pickle
import random

from django.core.cache.backends.base import DEFAULT_TIMEOUT, InvalidCacheKey
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router
from django.utils import timezone

from yahealthy_crm.sql import prepared_cursor

# One write in this many also deletes expired rows.
PURGE_EXPIRED_EVERY = 200
NEVER_EXPIRES = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
# Integers are stored as "#<digits>" ('#' is not in the base64 alphabet of pickled values), so
# `incr` is one atomic UPDATE in SQL: django-ratelimit's counter costs one round trip, not four.
INT_PREFIX = "#"
# Cache rows are disposable (a lost rate-limit count after a crash is harmless): when a write is its
# own transaction its commit does not wait for the WAL flush, which keeps an fsync off every
# rate-limited request. set_config(..., true) lasts until that statement's implicit commit; the
# statement reads the CTE ({from_async}) because PostgreSQL skips a CTE that nothing references.
ASYNC_COMMIT_CTE = "WITH _async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true)) "


def counter_upsert_sql(*, table: str, rows: str, now: str) -> str:
    """The INSERT that adds counters: `rows` yields (cache_key, '#<delta>', expires); a live integer
    entry gets the delta added, an absent, expired or non-integer one starts afresh. Returns each
    counter's key and new value. `now` is the SQL of the current time (a parameter placeholder).

    The one place of the counter rule: `incr_or_add_many` and statements that count as a side effect
    (the webhook's idempotency claim) both use it. The prefix is a constant, not user input.
    """
    live = f"c.expires > {now} AND left(c.value, 1) = '{INT_PREFIX}'"
    return (
        f"INSERT INTO {table} AS c (cache_key, value, expires) {rows} "
        f"ON CONFLICT (cache_key) DO UPDATE SET value = CASE WHEN {live} "
        f"THEN '{INT_PREFIX}' || (substr(c.value, 2)::bigint + substr(EXCLUDED.value, 2)::bigint) "
        "ELSE EXCLUDED.value END, "
        f"expires = CASE WHEN {live} THEN c.expires ELSE EXCLUDED.expires END "
        "RETURNING c.cache_key, c.value"
    )


@functools.cache
def _counter_add_sql(table: str, p: str, from_sql: str) -> str:
    """`PostgresCache.counter_add_sql`'s statement (the same few per process: built once)."""
    return counter_upsert_sql(
        table=table,
        rows=f"SELECT %({p}key)s, '{INT_PREFIX}' || %({p}delta)s::bigint, %({p}expires)s {from_sql}",
        now=f"%({p}now)s",
    )


class PostgresCache(DatabaseCache):
    def validate_key(self, key):
        # Keys go to a varchar(255) column; memcached's rules (Django's default check, a Python loop
        # over every character of every key) do not apply. A batch's rate limit makes 500 keys.
        if len(key) > 255:
            raise InvalidCacheKey(f"Cache key longer than 255 characters: {key[:80]}...")

    def _encode(self, value) -> str:
        if type(value) is int:
            return f"{INT_PREFIX}{value}"
        return base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")

    @staticmethod
    def _decode(value: str):
        if value.startswith(INT_PREFIX):
            return int(value[1:])
        return pickle.loads(base64.b64decode(value.encode()))  # noqa: S301 - written by this class only

    def _write(self, sql: str, params: list):
        """Run one write statement; as its own (asynchronously committed) transaction when possible."""
        db = router.db_for_write(self.cache_model_class)
        conn = connections[db]
        table = conn.ops.quote_name(self._table)
        # Never relax the durability of a caller's transaction.
        own_transaction = not conn.in_atomic_block
        sql = sql.format(table=table, from_async=" FROM _async" if own_transaction else "")
        with prepared_cursor(db) as cursor:
            cursor.execute((ASYNC_COMMIT_CTE if own_transaction else "") + sql, params)
            row = cursor.fetchone() if cursor.description else None
            if random.randrange(PURGE_EXPIRED_EVERY) == 0:
                cursor.execute(f"DELETE FROM {table} WHERE expires <= %s", [timezone.now()])  # noqa: S608
        return row

    def _write_many(self, sql: str, params: list) -> list:
        """`_write` for a statement that returns many rows; `{from_async_join}` joins the CTE."""
        db = router.db_for_write(self.cache_model_class)
        conn = connections[db]
        own_transaction = not conn.in_atomic_block
        sql = sql.format(
            table=conn.ops.quote_name(self._table), from_async_join=" CROSS JOIN _async" if own_transaction else ""
        )
        with prepared_cursor(db) as cursor:
            cursor.execute((ASYNC_COMMIT_CTE if own_transaction else "") + sql, params)
            return cursor.fetchall()

    def get_many(self, keys, version=None):
        key_map = {self.make_and_validate_key(key, version=version): key for key in keys}
        if not key_map:
            return {}
        db = router.db_for_read(self.cache_model_class)
        table = connections[db].ops.quote_name(self._table)
        with prepared_cursor(db) as cursor:
            cursor.execute(
                f"SELECT cache_key, value FROM {table} WHERE cache_key = ANY(%s::text[]) AND expires > %s",  # noqa: S608
                [list(key_map), timezone.now()],
            )
            return {key_map[key]: self._decode(value) for key, value in cursor.fetchall()}

    def read_sql(self, key, version=None) -> tuple[str, list]:
        """A scalar SELECT of key's value as stored (encoded), NULL when absent or expired, for a
        caller's own statement (one that needs to know whether the key is set)."""
        table = connections[router.db_for_read(self.cache_model_class)].ops.quote_name(self._table)
        sql = f"SELECT value FROM {table} WHERE cache_key = %s AND expires > statement_timestamp()"  # noqa: S608
        return sql, [self.make_and_validate_key(key, version=version)]

    def get(self, key, default=None, version=None):
        # One key (the common read: a flag per webhook event while a sweep is queued): prepared, no list.
        sql, params = self.read_sql(key, version=version)
        with prepared_cursor(router.db_for_read(self.cache_model_class)) as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return default if row is None else self._decode(row[0])

    def _base_set(self, mode, key, value, timeout=DEFAULT_TIMEOUT):
        timeout = self.get_backend_timeout(timeout)  # an absolute UNIX time (or None: never)
        now = timezone.now()
        expires = NEVER_EXPIRES if timeout is None else dt.datetime.fromtimestamp(timeout, tz=dt.UTC)
        if mode == "touch":
            sql = (
                "UPDATE {table} SET expires = %s{from_async} WHERE cache_key = %s AND expires > %s RETURNING cache_key"
            )
            return self._write(sql, [expires, key, now]) is not None
        # `add` only replaces an expired entry; `set` always replaces.
        only_expired = " WHERE c.expires <= %s" if mode == "add" else ""
        sql = (  # the template has no user input: keys and values are parameters
            "INSERT INTO {table} AS c (cache_key, value, expires) SELECT %s, %s, %s{from_async} "
            "ON CONFLICT (cache_key) DO UPDATE SET value = EXCLUDED.value, expires = EXCLUDED.expires"
            f"{only_expired} RETURNING c.cache_key"
        )
        return self._write(sql, [key, self._encode(value), expires, *([now] if mode == "add" else [])]) is not None

    def incr(self, key, delta=1, version=None):
        cache_key = self.make_and_validate_key(key, version=version)
        # One statement: the row lock of the UPDATE serialises concurrent increments.
        row = self._write(
            "UPDATE {table} SET value = %s || (substr(value, 2)::bigint + %s){from_async} "
            "WHERE cache_key = %s AND expires > %s AND left(value, 1) = %s RETURNING value",
            [INT_PREFIX, delta, cache_key, timezone.now(), INT_PREFIX],
        )
        if row is not None:
            return int(row[0][1:])
        # Absent, or a value that is not an integer (e.g. a float): get-then-set like Django's own incr,
        # keeping the entry's expiry.
        value = self.get(key, version=version)
        if value is None:
            raise ValueError(f"Key '{cache_key}' not found")
        new_value = value + delta
        self._write(
            "UPDATE {table} SET value = %s{from_async} WHERE cache_key = %s AND expires > %s RETURNING cache_key",
            [self._encode(new_value), cache_key, timezone.now()],
        )
        return new_value

    def incr_or_add(self, key, delta: int, timeout, version=None) -> int:
        """Add `delta` to an integer counter, creating it (with `timeout`) when absent or expired.

        One statement where django-ratelimit's add-then-incr takes two (rate limits count every
        webhook). A live entry that is not an integer is replaced by `delta`.
        """
        return self.incr_or_add_many({key: delta}, timeout, version=version)[key]

    def counter_add_sql(self, key, delta: int, timeout, *, param_prefix: str, from_sql: str = "") -> tuple[str, dict]:
        """The INSERT that adds `delta` to counter `key`, for a caller to run inside its own statement
        (a CTE, so the count commits or rolls back with the caller's transaction): the SQL, with named
        parameters starting with `param_prefix`, and their values. `from_sql` (e.g. "FROM some_cte")
        makes the counter's row wait until that CTE has run."""
        timeout = self.get_backend_timeout(timeout)
        p = param_prefix
        table = connections[router.db_for_write(self.cache_model_class)].ops.quote_name(self._table)
        return _counter_add_sql(table, p, from_sql), {
            f"{p}key": self.make_and_validate_key(key),
            f"{p}delta": int(delta),
            f"{p}expires": NEVER_EXPIRES if timeout is None else dt.datetime.fromtimestamp(timeout, tz=dt.UTC),
            f"{p}now": timezone.now(),
        }

    def incr_or_add_many(self, deltas: dict, timeout, version=None) -> dict:
        """`incr_or_add` for many counters in one statement: {key: delta} -> {key: new total}."""
        if not deltas:
            return {}
        cache_keys = {self.make_and_validate_key(key, version=version): key for key in deltas}
        timeout = self.get_backend_timeout(timeout)
        expires = NEVER_EXPIRES if timeout is None else dt.datetime.fromtimestamp(timeout, tz=dt.UTC)
        now = timezone.now()
        # ORDER BY: concurrent batches lock their counter rows in the same order (no deadlock).
        rows = self._write_many(
            counter_upsert_sql(
                table="{table}",
                rows="SELECT v.cache_key, %s || v.delta, %s "
                "FROM unnest(%s::text[], %s::bigint[]) AS v(cache_key, delta){from_async_join} ORDER BY v.cache_key",
                now="%s",
            ),
            [INT_PREFIX, expires, list(cache_keys), [int(deltas[key]) for key in cache_keys.values()], now, now],
        )
        return {cache_keys[cache_key]: int(value[1:]) for cache_key, value in rows}
