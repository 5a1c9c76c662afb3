"""Secrets and tokens never reach the logs: gunicorn's access log and the application's own log."""

import json

import pytest
from django.contrib.auth import get_user_model

from tests.servers import ADMIN_KEY, gunicorn_running, http_request
from tests.support import JWT_SECRET, make_jwt
from tests.sync.support import URL as WEBHOOK_PATH
from tests.sync.support import signed_headers
from yahealthy_crm.models import ServiceApiKey

pytestmark = [pytest.mark.django_db(transaction=True)]


def _call(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> int:
    return http_request(url, method=method, data=body, headers=headers)[0]


def test_keys_tokens_signatures_and_passwords_are_not_logged(tmp_path):
    _, api_key = ServiceApiKey.objects.create_key(name="log-test")
    password = "staff-password-that-must-not-be-logged"
    get_user_model().objects.create_superuser("logstaff", "", password)
    jwt_token = make_jwt("log_user")
    expired_token = make_jwt("log_user", expires_in_s=-60)
    payload = {"food_name": "Oats", "calories": 300}
    body = json.dumps({"entityType": "food_log", "operation": "create", "userId": "log_user", "payload": payload})
    webhook_headers = signed_headers(body)
    secrets = {
        "api key": api_key,
        "jwt": jwt_token,
        "expired jwt": expired_token,
        "admin key": ADMIN_KEY,
        "webhook signature": webhook_headers["webhook-signature"].split(",", 1)[1],
        "password": password,
        "token in a query string": "query-token-1234567890",
    }
    env = {"CRM_JWT_SECRET": JWT_SECRET, "LOG_LEVEL": "DEBUG", "CRM_ACCESS_LOG": "-"}
    with gunicorn_running(tmp_path, env) as server:
        base = server.url
        assert _call(f"{base}/api/crm/users/log_user", headers={"Authorization": f"Api-Key {api_key}"}) == 404
        assert _call(f"{base}/api/crm/users/log_user", headers={"Authorization": "Api-Key wrong." + api_key}) == 401
        assert _call(f"{base}/api/crm/users/log_user", headers={"Authorization": f"Bearer {jwt_token}"}) == 404
        assert _call(f"{base}/api/crm/users/log_user", headers={"Authorization": f"Bearer {expired_token}"}) == 401
        assert _call(f"{base}/api/crm/users/log_user?token={secrets['token in a query string']}") == 401
        assert _call(f"{base}/api/crm/jobs/assess-churn", method="POST", headers={"X-Admin-Key": ADMIN_KEY}) in (
            200,
            202,
        )
        assert _call(f"{base}/api/crm/jobs/assess-churn", method="POST", headers={"X-Admin-Key": "wrong"}) in (
            401,
            403,
        )
        webhook = {"Content-Type": "application/json", "Idempotency-Key": "log_1", **webhook_headers}
        assert _call(f"{base}{WEBHOOK_PATH}", method="POST", body=body.encode(), headers=webhook) == 202
        login = f"username=logstaff&password={password}".encode()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert _call(f"{base}/admin/login/", method="POST", body=login, headers=form) == 403  # no CSRF token
        log = server.log()

    assert "/api/crm/users/log_user" in log  # the access log is on and was read
    leaked = [name for name, secret in secrets.items() if secret in log]
    assert leaked == [], f"found in the logs: {leaked}"
