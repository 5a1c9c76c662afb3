"""What the benchmarks share: the PostgreSQL server to use and throw-away databases on it."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def server_url() -> str:
    """DATABASE_URL, else the embedded server under CRM_VAR_DIR (var/) that `make run` starts."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url
    from yahealthy_crm.embedded_postgres import embedded_database_start

    var_dir = Path(os.environ.get("CRM_VAR_DIR", ROOT / "var")).resolve()
    return embedded_database_start(var_dir / "pgdata")


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def database_recreate(url: str, name: str, *, drop_only: bool = False) -> None:
    """Drop database `name` on the server of `url` (connected sessions too) and create it empty."""
    import psycopg

    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')
