"""Fixtures for every test folder: callers of the REST API (end users with JWTs, service keys, staff),
Celery run in process, and a frozen rate-limit clock. Plain helpers live in tests/support.py."""

import time
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from tests.factories import ProfileFactory
from tests.support import JWT_SECRET, USER_A, USER_B, bearer_client, make_jwt
from yahealthy_crm.models import ServiceApiKey


@pytest.fixture(autouse=True)
def _jwt_settings(settings):
    settings.CRM_JWT_SECRET = JWT_SECRET
    settings.CRM_JWT_PUBLIC_KEY = ""


@pytest.fixture(autouse=True)
def _no_embedding_sweep_known():
    # A process notes the embedding sweep it scheduled (activities.services): not across tests.
    from activities.services import _SweepKnown

    _SweepKnown.starts_at = 0.0


@pytest.fixture
def profile_a(db):
    return ProfileFactory(user_id=USER_A)


@pytest.fixture
def profile_b(db):
    return ProfileFactory(user_id=USER_B)


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def client_a():
    return bearer_client(make_jwt(USER_A))


@pytest.fixture
def client_b():
    return bearer_client(make_jwt(USER_B))


@pytest.fixture
def service_key(db):
    api_key, key = ServiceApiKey.objects.create_key(name="app-backend")
    return api_key, key


@pytest.fixture
def service_client(service_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {service_key[1]}")
    return client


@pytest.fixture
def staff_user(db):
    # A member of the CRM team who may change and export profiles (API writes and the GDPR export need
    # those rights; the read-only "CRM viewer" group is tested in tests/profiles/test_staff_roles.py).
    user = get_user_model().objects.create_user(username="carol", password=None, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_crmuserprofile", "export_crmuserprofile"])
    )
    return user


@pytest.fixture
def staff_client(staff_user):
    client = APIClient()
    client.force_login(staff_user)
    return client


@pytest.fixture
def celery_eager():
    """Run Celery tasks in process for this test; a task's error is raised in the test (the real broker
    is exercised in tests/e2e). Both settings are restored afterwards."""
    from yahealthy_crm.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def celery_eager_with_retries(celery_eager):
    """`celery_eager` where a task's `retry()` re-runs it in process instead of raising Retry."""
    celery_eager.conf.task_eager_propagates = False
    return celery_eager


@pytest.fixture
def rate_limit_clock(monkeypatch):
    """django-ratelimit counts in fixed windows of wall-clock time; with its clock frozen a burst in a
    test cannot straddle a window boundary and the Retry-After it reports is known. Returns the frozen
    Unix time."""
    import django_ratelimit.core

    now = int(time.time())
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: now))
    return now
