import contextlib
import os
import secrets
import tempfile
from pathlib import Path


def local_secret(path: Path) -> str:
    """A random secret generated once per checkout and kept under var/ (never committed).

    Web, worker and beat may start together: the secret is written to a temporary file and linked
    into place atomically, so every process ends up reading the same value.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".secret-")
        try:
            with os.fdopen(fd, "w") as tmp:
                tmp.write(secrets.token_urlsafe(50))
            with contextlib.suppress(FileExistsError):
                os.link(tmp_name, path)
        finally:
            os.unlink(tmp_name)
    return path.read_text().strip()


def local_secret_read(path: Path) -> str:
    """The secret `local_secret` wrote, or "" before it ran (reading never creates anything)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
