import json

import pytest

from tests.sync.support import URL, WEBHOOK_SECRET, signed_headers


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.CRM_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.APP_WEBHOOK_URL = ""
    settings.APP_WEBHOOK_SECRET = ""


@pytest.fixture(autouse=True)
def _no_embedding_sweep_scheduled(db):
    # With a Redis cache the "sweep scheduled" flag would outlive the test that set it.
    from activities.services import embedding_sweep_flag_clear

    embedding_sweep_flag_clear()


@pytest.fixture
def post_event(client):
    """POST a signed event; `key` sets Idempotency-Key, `raw` sends a body string as is."""

    def _post(body=None, *, key=None, raw=None, headers=None, sign=True, **sign_kwargs):
        text = raw if raw is not None else json.dumps(body)
        all_headers = signed_headers(text, **sign_kwargs) if sign else {}
        if key is not None:
            all_headers["Idempotency-Key"] = key
        all_headers.update(headers or {})
        return client.post(URL, data=text, content_type="application/json", headers=all_headers)

    return _post
