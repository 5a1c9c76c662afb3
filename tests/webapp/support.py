"""Helpers of the webapp tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh_process_env(var_dir: Path, **extra: str) -> dict:
    """The environment of a new CRM process with its local state in `var_dir` and no JWT or CORS setting
    (an external database URL so that nothing starts an embedded server)."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("CRM_JWT_", "CRM_VAR_DIR", "CRM_CORS_"))
    }
    env.update(
        CRM_VAR_DIR=str(var_dir),
        DATABASE_URL="postgres://nobody@127.0.0.1:1/none",
        DJANGO_SECRET_KEY="x" * 50,
        DJANGO_SETTINGS_MODULE="yahealthy_crm.settings",
        **extra,
    )
    return env


def setting_in_fresh_process(env: dict, name: str) -> str:
    """`repr` of a setting as a new process sees it after the entry points prepared the environment."""
    code = (
        "import django\n"
        "from yahealthy_crm.bootstrap import local_environment_prepare\n"
        "local_environment_prepare()\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        f"print(repr(settings.{name}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()
