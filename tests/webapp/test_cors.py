"""Cross-origin use of the REST API by the app's own web frontend (django-cors-headers): allowed
origins from CRM_CORS_ALLOWED_ORIGINS, none by default, only under /api/."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from tests.support import USER_A
from tests.webapp.support import fresh_process_env, setting_in_fresh_process

pytestmark = pytest.mark.django_db
APP_ORIGIN = "https://app.yahealthy.example"
OTHER_ORIGIN = "https://evil.example"
PROFILE = f"/api/crm/users/{USER_A}"


@pytest.fixture
def app_origin_allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP_ORIGIN]


def test_no_origin_is_allowed_by_default(client_a, profile_a):
    # the test environment sets no CRM_CORS_ALLOWED_ORIGINS, like a fresh deployment
    assert django_settings.CORS_ALLOWED_ORIGINS == []

    response = client_a.get(PROFILE, HTTP_ORIGIN=APP_ORIGIN)

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_an_allowed_origin_gets_the_header_and_can_read_retry_after(client_a, profile_a, app_origin_allowed):
    response = client_a.get(PROFILE, HTTP_ORIGIN=APP_ORIGIN)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "Access-Control-Allow-Credentials" not in response  # bearer tokens, never cookies
    exposed = {name.strip().lower() for name in response["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"retry-after", "x-request-id"}


def test_a_preflight_from_an_allowed_origin_may_send_the_bearer_header(anon_client, app_origin_allowed):
    response = anon_client.options(
        f"/api/crm/users/{USER_A}/ask",
        HTTP_ORIGIN=APP_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP_ORIGIN
    allowed_headers = {name.strip() for name in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type"} <= allowed_headers
    assert "POST" in response["Access-Control-Allow-Methods"]


def test_another_origin_gets_no_header(client_a, profile_a, anon_client, app_origin_allowed):
    response = client_a.get(PROFILE, HTTP_ORIGIN=OTHER_ORIGIN)
    preflight = anon_client.options(PROFILE, HTTP_ORIGIN=OTHER_ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")

    assert response.status_code == 200  # the browser, not the server, withholds the answer
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Origin" not in preflight


def test_only_the_api_answers_cross_origin(client, app_origin_allowed):
    for path in ("/coach/", "/admin/login/", "/healthz"):
        response = client.get(path, HTTP_ORIGIN=APP_ORIGIN)
        assert "Access-Control-Allow-Origin" not in response, path


def test_allowed_origins_come_from_the_environment(tmp_path):
    env = fresh_process_env(tmp_path)
    assert setting_in_fresh_process(env, "CORS_ALLOWED_ORIGINS") == "[]"

    env = fresh_process_env(tmp_path, CRM_CORS_ALLOWED_ORIGINS=f"{APP_ORIGIN},http://localhost:3000")
    assert setting_in_fresh_process(env, "CORS_ALLOWED_ORIGINS") == repr([APP_ORIGIN, "http://localhost:3000"])
