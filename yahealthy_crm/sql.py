"""Raw SQL helpers shared by the apps' `queries.py` modules (the webhook hot paths)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, connections
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

# `column = {ANY_OF_JSON_TEXT}` with json.dumps(<list of str>): the list travels as one JSON document.
ANY_OF_JSON_TEXT = "ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"


_NAMED_PARAM = re.compile(r"%\((\w+)\)s")


def named_to_positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`%(name)s` placeholders as `%s`, and the names in their order: a Statement's parameters are
    positional (statements_run joins several), a named SQL fragment can still be shared."""
    return _NAMED_PARAM.sub("%s", sql), tuple(_NAMED_PARAM.findall(sql))


@dataclass(frozen=True)
class Statement:
    """One data-modifying SQL statement (INSERT/UPDATE/DELETE ... RETURNING) and its parameters,
    built by the app that owns the table and run later, possibly together with others."""

    sql: str
    params: list = field(default_factory=list)
    name: str = ""  # its CTE's name in statements_run, for a read of the same statement to refer to


class _PreparingCursor(ServerBindingCursor):
    """Binds parameters on the server and prepares every statement it runs (psycopg keeps up to 100
    per connection and reuses one whenever the same SQL comes again with the same parameter types)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Logs the statement with its parameters filled in, as the default cursors do (tests count and
    read them): psycopg keeps no client-side text of a server-bound query."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


@contextmanager
def prepared_cursor(using: str = "default") -> Iterator[CursorWrapper]:
    """A cursor for the hot paths' fixed statements: parsed and planned once per connection.

    Planning the webhook's CTE statements cost more PostgreSQL CPU than running them, and quoting
    their parameters into the SQL text (Django's default client-side binding) cost more Python CPU
    than the rest of the request (docs/sync.md "Benchmark"). Prepared statements use generic plans
    (`plan_cache_mode`, settings.py): nothing else on these connections is prepared, so the ORM's
    queries are unaffected. DATABASE_PREPARED_STATEMENTS=0 turns this off (e.g. behind a
    transaction-pooling PgBouncer older than 1.21) and gives a plain cursor.
    """
    if not settings.DATABASE_PREPARED_STATEMENTS:
        with connections[using].cursor() as cursor:
            yield cursor
        return
    with _server_cursor(using, _HeldCursors) as cursor:
        yield cursor


# Statement texts one connection keeps a cursor for (the hot paths have a few dozen).
HELD_CURSORS_MAX = 200


class _HeldCursorsOfConnection:
    """One database connection's preparing cursors, by statement text (with the text object they ran)."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.by_text: dict[str, tuple[str, _PreparingCursor]] = {}
        self.in_use: set[_PreparingCursor] = set()

    def take(self, query: str) -> tuple[str, _PreparingCursor, bool]:
        """(text object to run, cursor, whether it is held): the held cursor of this text when free.
        Held cursors are never closed; they go with their connection (`_HeldCursors` sees a new one)."""
        held = self.by_text.get(query)
        if held is None and len(self.by_text) < HELD_CURSORS_MAX:
            held = self.by_text[query] = (query, _PreparingCursor(self.connection))
        if held is None or held[1] in self.in_use:  # full, or run by an enclosing block
            return query, _PreparingCursor(self.connection), False
        self.in_use.add(held[1])
        return *held, True


class _HeldCursors:
    """What `prepared_cursor` yields (inside Django's wrapper): each statement runs on the
    connection's own cursor for that statement text, kept as long as the connection.

    psycopg builds a cursor's Transformer (its parameter dumpers and result loaders, looked up per
    type) anew for every execute, unless the same cursor runs the same query object again; a new
    cursor per statement did that every time: about 4 % of a webhook's Python (docs/sync.md
    "Benchmark"). So each text runs on its held cursor, passed as the text object it first ran as.
    Results are read from the cursor that ran the last statement; a statement whose held cursor an
    enclosing block still reads runs on a cursor of its own.
    """

    def __init__(self, db) -> None:
        held = getattr(db, "_held_cursors", None)
        if held is None or held.connection is not db.connection:  # a new connection: new cursors
            held = db._held_cursors = _HeldCursorsOfConnection(db.connection)
        self._held = held
        self._current: _PreparingCursor | None = None
        self._current_held = False

    def execute(self, query, params=None, **kwargs):
        self.close()
        query, self._current, self._current_held = self._held.take(query)
        return self._current.execute(query, params, **kwargs)

    def close(self) -> None:
        """Frees the cursor of the last statement: a held one for the next statement of its text."""
        if self._current is None:
            return
        if self._current_held:
            self._held.in_use.discard(self._current)
        else:
            self._current.close()
        self._current = None

    def __getattr__(self, name):  # fetchone, rowcount, description...: of the last statement
        return getattr(self._current, name)


@contextmanager
def _server_cursor(using: str, cursor_for: Callable) -> Iterator[CursorWrapper]:
    """A Django cursor wrapper (logging queries when Django does) around `cursor_for(db)`, a
    server-binding cursor (or `_HeldCursors`) of the connection."""
    db = connections[using]
    db.ensure_connection()
    db.validate_thread_sharing()
    wrapper_class = _PreparedDebugWrapper if db.queries_logged else CursorWrapper
    with wrapper_class(cursor_for(db), db) as cursor:
        yield cursor


class _UnpreparedServerCursor(ServerBindingCursor):
    """Binds parameters on the server and never prepares (psycopg would after 5 runs of one SQL)."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=False, binary=binary)


@contextmanager
def document_cursor(using: str = "default") -> Iterator[CursorWrapper]:
    """A cursor for statements that carry their rows as one large JSON document (the batch intake).

    The parameters travel apart from the SQL text: client-side binding quoted a document of up to a
    few MB into the SQL, which PostgreSQL's SQL lexer then scanned (a tenth of the batch path's
    backend CPU went to lexing and quoting). Not prepared: each statement is planned for its own
    document, as before, and a pooler in transaction mode sees only unnamed statements.
    """
    with _server_cursor(using, lambda db: _UnpreparedServerCursor(db.connection)) as cursor:
        yield cursor


def rows_copy(table: str, columns: list[str], rows: list[Sequence], using: str = "default") -> int:
    """COPY the rows (values in `columns` order, as psycopg adapts them) into `table`; returns how many.

    The cheapest way into PostgreSQL for many rows: no SQL text to parse per value, and the heap
    takes them a page at a time (one WAL record per page, not per row); the batch intake's INSERT
    ... SELECT FROM json_to_recordset cost 1.25-1.9 times the backend CPU per row (docs/sync.md
    "Benchmark").
    Values are checked as the column's type reads them: a varchar(n) value must fit (no cast
    truncates it). Runs like any statement: through the connection's execute wrappers, into its
    query log (tests count it), with Django's exceptions (IntegrityError on a duplicate key).
    """
    db = connections[using]
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # names from the caller's model

    with db.cursor() as cursor:

        def copy(sql, rows, many, context):
            db.validate_no_broken_transaction()
            with db.wrap_database_errors, cursor.cursor.copy(sql) as stream:
                for row in rows:
                    stream.write_row(row)
            return cursor.cursor.rowcount

        executor = copy
        for wrapper in reversed(db.execute_wrappers):  # as CursorWrapper.execute applies them
            executor = functools.partial(wrapper, executor)
        context = {"connection": db, "cursor": cursor}
        if isinstance(cursor, CursorDebugWrapper):
            with cursor.debug_sql(sql):
                return executor(sql, rows, False, context)
        return executor(sql, rows, False, context)


def statements_run(statements: list[Statement], *, reads: tuple[Statement, ...] = ()) -> tuple:
    """Run the statements as ONE statement: each becomes a data-modifying CTE of `WITH ... SELECT 1`.

    PostgreSQL runs every data-modifying CTE exactly once, to completion, all on the same snapshot:
    so the statements must touch different rows (none may need another's effect). One round trip
    and one statement instead of one per write. Each of `reads`, a scalar SELECT, becomes a column
    of the statement's result (on the snapshot before the writes); their values are returned.
    """
    if not statements and not reads:
        return ()
    result = ", ".join(f"({read.sql})" for read in reads) or "1"
    if len(statements) == 1 and not reads:
        sql, params = statements[0].sql, statements[0].params
    elif not statements:
        sql, params = f"SELECT {result}", []
    else:
        ctes = ", ".join(
            f"{statement.name or f'w{index}'} AS ({statement.sql})" for index, statement in enumerate(statements)
        )
        sql = f"WITH {ctes} SELECT {result}"
        params = [param for statement in statements for param in statement.params]
    params = [*params, *(param for read in reads for param in read.params)]
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        return tuple(cursor.fetchone()) if reads else ()


def model_from_row(model, fields: list, values: list | tuple):
    """A model instance from raw column values, as the ORM loads one: each field's `from_db_value`
    converts (JSON text to dicts, ...), then `Model.from_db` builds it (fields left out are deferred)."""
    converted = [
        value if value is None or not hasattr(field, "from_db_value") else field.from_db_value(value, None, connection)
        for field, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [field.attname for field in fields], converted)
