"""`manage.py coach_link <userId>`: a short-lived link that opens the coaching page as that user."""

from __future__ import annotations

import datetime as dt
import io
import time
from urllib.parse import unquote, urlsplit

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ProfileFactory
from tests.support import JWT_SECRET, USER_A, bearer_client
from tests.webapp.support import fresh_process_env, setting_in_fresh_process
from webapp.links import COACH_LINK_ISSUER, coach_link_token

pytestmark = pytest.mark.django_db


def _coach_link(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("coach_link", *args, stdout=out, stderr=err)
    assert "anyone holding it can act as" in err.getvalue()
    return out.getvalue().strip()


def _token(link: str) -> str:
    fragment = urlsplit(link).fragment
    assert fragment.startswith("token=")
    return unquote(fragment.removeprefix("token="))


def test_prints_a_link_to_the_page_with_a_token_the_api_accepts(profile_a, monkeypatch):
    # given `make run`'s port
    monkeypatch.delenv("PORT", raising=False)

    # when
    link = _coach_link(USER_A)

    # then: the default base is where `make run` serves, the token is in the fragment only
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://127.0.0.1:5000/coach/"
    assert parts.query == ""
    token = _token(link)
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == USER_A
    assert claims["iss"] == COACH_LINK_ISSUER
    assert claims["exp"] - claims["iat"] == 30 * 60
    assert abs(claims["iat"] - time.time()) < 60
    # and the REST API takes it as that end user's token (own data yes, anyone else's no)
    assert bearer_client(token).get(f"/api/crm/users/{USER_A}").status_code == 200
    ProfileFactory(user_id="someone_else")
    assert bearer_client(token).get("/api/crm/users/someone_else").status_code == 404


def test_base_url_and_minutes_options(profile_a):
    link = _coach_link(USER_A, "--base-url", "https://crm.example.com/", "--minutes", "5")

    assert link.startswith("https://crm.example.com/coach/#token=")
    claims = jwt.decode(_token(link), JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 5 * 60


def test_default_base_follows_port(profile_a, monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    assert _coach_link(USER_A).startswith("http://127.0.0.1:8123/coach/#token=")


def test_unknown_user_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No CRM user with id 'ghost_user'"):
        call_command("coach_link", "ghost_user", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.parametrize("minutes", ["0", "-3", "1441"])
def test_lifetime_out_of_range_is_refused(profile_a, minutes):
    with pytest.raises(CommandError, match="--minutes must be between 1 and 1440"):
        call_command("coach_link", USER_A, "--minutes", minutes, stdout=io.StringIO(), stderr=io.StringIO())


def test_base_url_must_be_http(profile_a):
    with pytest.raises(CommandError, match="must start with http"):
        call_command("coach_link", USER_A, "--base-url", "javascript:alert(1)", stdout=io.StringIO())


def test_without_an_hs256_secret_the_command_says_why(profile_a, settings):
    # given a server that verifies only the app's RS256 tokens
    settings.CRM_JWT_SECRET = ""
    settings.CRM_JWT_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----"

    with pytest.raises(CommandError, match="CRM_JWT_SECRET, which is not set"):
        call_command("coach_link", USER_A, stdout=io.StringIO())


def test_an_expired_link_is_refused_by_the_api(profile_a):
    # given a link made 2 minutes ago that lived one minute (past the 30 s clock leeway)
    token = coach_link_token(user_id=USER_A, minutes=1, now=timezone.now() - dt.timedelta(minutes=2))

    response = bearer_client(token).get(f"/api/crm/users/{USER_A}")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The bearer token has expired."
    assert APIClient().get(f"/api/crm/users/{USER_A}").status_code == 401


def test_after_make_run_links_work_without_any_jwt_setting(tmp_path):
    # given a checkout with no JWT setting (its local state in a fresh folder)
    env = fresh_process_env(tmp_path)

    # when two processes start (as web and manage.py do)
    first = setting_in_fresh_process(env, "CRM_JWT_SECRET")
    second = setting_in_fresh_process(env, "CRM_JWT_SECRET")

    # then: both verify and sign with the same generated secret, kept under var/
    assert len(first) >= 40
    assert first == second == repr((tmp_path / "jwt_secret").read_text().strip())

    # and with the app's RS256 key configured, no local HS256 secret is made or accepted
    other = tmp_path / "with-public-key"
    env = fresh_process_env(other, CRM_JWT_PUBLIC_KEY="-----BEGIN PUBLIC KEY-----")
    assert setting_in_fresh_process(env, "CRM_JWT_SECRET") == "''"
    assert not (other / "jwt_secret").exists()
