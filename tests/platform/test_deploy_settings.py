"""The production environment the README describes passes Django's deployment checklist."""

import os
import secrets
import subprocess
import sys

from django.conf import settings

from tests.support import database_url

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "crm.example.com",
    "CRM_HTTPS": "true",
    "CRM_TRUST_X_FORWARDED_PROTO": "true",
}


def _manage(*args: str, extra_env: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **extra_env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production(db, tmp_path):
    env = {
        **PRODUCTION_ENV,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url(),
        "CRM_VAR_DIR": str(tmp_path / "var"),
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", extra_env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_https_settings_the_checklist_complains(db, tmp_path):
    # The check above can fail: the same run without CRM_HTTPS names what is missing.
    env = {
        **PRODUCTION_ENV,
        "CRM_HTTPS": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url(),
        "CRM_VAR_DIR": str(tmp_path / "var"),
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", extra_env=env)
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr + result.stdout
