"""Local state a process needs before Django reads its settings.

Called by the entry points only (manage.py, wsgi.py, yahealthy_crm/worker.py, the test suite),
never by settings: importing settings has no side effects. Without `DJANGO_SECRET_KEY` a random
key is generated once into `var/secret_key`; without `CRM_JWT_SECRET` and `CRM_JWT_PUBLIC_KEY` a
random end-user JWT secret into `var/jwt_secret`; without `DATABASE_URL` the embedded PostgreSQL is
started. Reads the same environment (and `.env`) as settings.
"""

from __future__ import annotations

from pathlib import Path

import environ

from yahealthy_crm.embedded_postgres import embedded_database_start
from yahealthy_crm.local_secrets import local_secret

BASE_DIR = Path(__file__).resolve().parent.parent
_prepared = False


def var_dir(env: environ.Env) -> Path:
    return Path(env("CRM_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()


def local_environment_prepare() -> None:
    """Create the local secret and start the embedded database when the environment needs them."""
    global _prepared
    if _prepared:
        return
    env = environ.Env()
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
    state = var_dir(env)
    if not env("DJANGO_SECRET_KEY", default=""):
        local_secret(state / "secret_key")
    if not env("CRM_JWT_SECRET", default="") and not env("CRM_JWT_PUBLIC_KEY", default=""):
        # Signs the links of `manage.py coach_link` (settings read it as CRM_JWT_SECRET).
        local_secret(state / "jwt_secret")
    if not env("DATABASE_URL", default=""):
        embedded_database_start(state / "pgdata")
    _prepared = True
