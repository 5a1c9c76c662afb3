"""Service API keys, end-user JWTs and staff sessions (design.md "Security model")."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tests.support import USER_A, bearer_client, make_jwt
from yahealthy_crm.models import ServiceApiKey

pytestmark = pytest.mark.django_db
URL_A = f"/api/crm/users/{USER_A}"


def _error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def _profile(response) -> tuple[int, str]:
    """Status and the user_id of the profile in the body (a 200 must carry the profile asked for)."""
    return response.status_code, response.json()["data"]["user_id"]


def test_anonymous_is_401_with_the_error_shape(anon_client, profile_a):
    response = anon_client.get(URL_A)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "error",
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
            "details": {},
        },
    }
    assert response["WWW-Authenticate"] == "Api-Key"


def test_service_key_acts_on_any_user_and_records_last_use(service_client, service_key, profile_a):
    api_key, _ = service_key
    assert api_key.last_used_at is None
    response = service_client.get(URL_A)
    assert _profile(response) == (200, USER_A)
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert (timezone.now() - api_key.last_used_at).total_seconds() < 10


def test_service_key_is_stored_hashed(service_key):
    api_key, key = service_key
    stored = ServiceApiKey.objects.get(pk=api_key.pk)
    assert key not in stored.hashed_key
    assert key not in stored.id
    assert stored.hashed_key.startswith("sha512$$")


@pytest.mark.parametrize(
    "header",
    ["Api-Key nope.nope", "Api-Key ", "Api-Key a b", "Bearer not-a-jwt", "Bearer "],
)
def test_bad_credentials_are_401(profile_a, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert _error(client.get(URL_A)) == (401, "authentication_failed")


def test_revoked_key_is_401(service_key, profile_a):
    api_key, key = service_key
    api_key.revoked = True
    api_key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert _error(client.get(URL_A)) == (401, "authentication_failed")


def test_expired_key_is_401(service_key, profile_a):
    api_key, key = service_key
    api_key.expiry_date = timezone.now() - dt.timedelta(minutes=1)
    api_key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert _error(client.get(URL_A)) == (401, "authentication_failed")


def test_create_api_key_command_prints_a_working_key_once(capsys, profile_a):
    call_command("create_api_key", "app-backend-prod")
    lines = capsys.readouterr().out.strip().splitlines()
    key = lines[-1]
    api_key = ServiceApiKey.objects.get(name="app-backend-prod")
    assert key.startswith(api_key.prefix + ".")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert _profile(client.get(URL_A)) == (200, USER_A)


def test_jwt_for_own_user_is_200(client_a, profile_a):
    response = client_a.get(URL_A)
    assert response.status_code == 200
    assert response.json()["data"]["user_id"] == USER_A


def test_jwt_of_another_user_is_404(client_b, profile_a):
    assert _error(client_b.get(URL_A)) == (404, "not_found")


@pytest.mark.parametrize(
    ("token_kwargs", "message"),
    [
        ({"expires_in_s": -120}, "The bearer token has expired."),
        ({"secret": "another-secret-of-sufficient-length-0123456789"}, "Invalid bearer token."),
    ],
)
def test_expired_or_forged_jwt_is_401(profile_a, token_kwargs, message):
    response = bearer_client(make_jwt(USER_A, **token_kwargs)).get(URL_A)
    assert _error(response) == (401, "authentication_failed")
    assert response.json()["error"]["message"] == message
    assert response["WWW-Authenticate"] == "Api-Key"


def test_jwt_without_exp_is_401(profile_a):
    import jwt

    from tests.support import JWT_SECRET

    token = jwt.encode({"sub": USER_A}, JWT_SECRET, algorithm="HS256")
    assert _error(bearer_client(token).get(URL_A)) == (401, "authentication_failed")


def test_jwt_with_alg_none_is_401(profile_a):
    import jwt

    token = jwt.encode({"sub": USER_A, "exp": 9999999999}, key=None, algorithm="none")
    assert _error(bearer_client(token).get(URL_A)) == (401, "authentication_failed")


def test_rs256_public_key(settings, profile_a):
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.CRM_JWT_PUBLIC_KEY = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings.CRM_JWT_SECRET = ""
    token = make_jwt(USER_A, secret=private_key, algorithm="RS256")
    assert _profile(bearer_client(token).get(URL_A)) == (200, USER_A)
    # An HS256 token is refused when only the public key is configured.
    assert _error(bearer_client(make_jwt(USER_A)).get(URL_A)) == (401, "authentication_failed")


def test_staff_session_is_200_and_non_staff_session_is_401(staff_client, profile_a, django_user_model):
    assert _profile(staff_client.get(URL_A)) == (200, USER_A)
    plain = django_user_model.objects.create_user(username="dave", password="x-pass-123!")
    client = APIClient()
    client.force_login(plain)
    assert _error(client.get(URL_A)) == (401, "not_authenticated")


def test_staff_session_writes_need_csrf(staff_user, profile_a):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.put(URL_A, {"age": 40}, format="json")
    assert _error(response) == (403, "permission_denied")


def test_docs_and_healthz_are_public(anon_client):
    schema = anon_client.get("/api/schema", {"format": "json"})
    docs = anon_client.get("/api/docs")

    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.content.decode()


def _rsa_key_pair():
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_key, public_pem


def test_jwt_secret_rotation_accepts_the_new_and_the_old_secret(settings, profile_a):
    new, old = "new-jwt-secret-of-sufficient-length-0123456789", "old-jwt-secret-of-sufficient-length-0123456789"
    settings.CRM_JWT_SECRET = f"{new} {old}"
    assert _profile(bearer_client(make_jwt(USER_A, secret=new)).get(URL_A)) == (200, USER_A)
    assert _profile(bearer_client(make_jwt(USER_A, secret=old)).get(URL_A)) == (200, USER_A)
    expired_old = bearer_client(make_jwt(USER_A, secret=old, expires_in_s=-120)).get(URL_A)
    assert expired_old.json()["error"]["message"] == "The bearer token has expired."
    forged = bearer_client(make_jwt(USER_A, secret="neither-secret-of-sufficient-length-0123456789")).get(URL_A)
    assert forged.json()["error"]["message"] == "Invalid bearer token."
    # the rotation done: the old secret is refused
    settings.CRM_JWT_SECRET = new
    assert _error(bearer_client(make_jwt(USER_A, secret=old)).get(URL_A)) == (401, "authentication_failed")


def test_rs256_public_key_rotation_accepts_either_key(settings, profile_a):
    (new_private, new_public), (old_private, old_public) = _rsa_key_pair(), _rsa_key_pair()
    settings.CRM_JWT_PUBLIC_KEY = new_public + old_public
    settings.CRM_JWT_SECRET = ""
    for private_key in (new_private, old_private):
        token = make_jwt(USER_A, secret=private_key, algorithm="RS256")
        assert _profile(bearer_client(token).get(URL_A)) == (200, USER_A)
    stranger, _ = _rsa_key_pair()
    token = make_jwt(USER_A, secret=stranger, algorithm="RS256")
    assert _error(bearer_client(token).get(URL_A)) == (401, "authentication_failed")
