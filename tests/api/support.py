"""Fixtures and helpers shared by the API and compliance tests (imported by their conftest files)."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.factories import ProfileFactory
from yahealthy_crm.models import ServiceApiKey

JWT_SECRET = "test-jwt-secret-of-sufficient-length-0123456789"
USER_A = "user_alice"
USER_B = "user_bob"


def make_jwt(sub: str, *, expires_in_s: int = 3600, secret: str = JWT_SECRET, algorithm: str = "HS256", **claims):
    now = dt.datetime.now(tz=dt.UTC)
    payload = {"sub": sub, "iat": now, "exp": now + dt.timedelta(seconds=expires_in_s), **claims}
    return jwt.encode(payload, secret, algorithm=algorithm)


def bearer_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture(autouse=True)
def _jwt_settings(settings):
    settings.CRM_JWT_SECRET = JWT_SECRET
    settings.CRM_JWT_PUBLIC_KEY = ""


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
    return get_user_model().objects.create_user(username="carol", password=None, is_staff=True)


@pytest.fixture
def staff_client(staff_user):
    client = APIClient()
    client.force_login(staff_user)
    return client
