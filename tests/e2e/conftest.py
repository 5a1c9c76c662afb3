"""The real browser of the e2e tests: Debian's chromium driven by Playwright (never a downloaded one)."""

import os
import shutil

import pytest
from django.db import connections

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    """A headless chromium for this test; fails in CI and skips elsewhere when chromium is missing."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (apt-get install chromium); .ci/run installs it")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    from playwright.sync_api import sync_playwright  # only e2e tests need Playwright loaded

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        # The test's ORM calls ran inside Playwright's event-loop context, which has connections of
        # its own; left open, one keeps pytest-django from dropping the test database at the end.
        connections.close_all()
        chromium.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
