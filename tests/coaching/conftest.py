import pytest

from tests.coaching.fake_openai import FakeOpenAI


@pytest.fixture(autouse=True)
def _offline_by_default(settings):
    """The offline coach and embedder unless a test points the openai provider at the fake server."""
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""
    settings.COACH_PROVIDER = "auto"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def fake_openai(httpserver, settings):
    """A local OpenAI-compatible server (real sockets) and the settings that point the coach at it."""
    fake = FakeOpenAI(httpserver)
    settings.OPENAI_API_KEY = "sk-test-fake"
    settings.OPENAI_BASE_URL = httpserver.url_for("/v1")
    settings.OPENAI_MODEL = "fake-gpt"
    settings.COACH_TIMEOUT_S = 5.0
    settings.COACH_RETRY_BACKOFF_S = 0.01
    return fake
