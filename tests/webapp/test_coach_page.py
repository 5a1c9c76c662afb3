"""The coaching page's frame (`/coach/`): what the server sends, its security headers and its weight."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webapp.views import COACH_PAGE_CSP

COACH = "/coach/"
WEBAPP = Path(__file__).resolve().parents[2] / "webapp"
FIRST_LOAD_BUDGET_BYTES = 100_000


def _assets(html: str) -> list[str]:
    """The script and style sheet URLs the page loads on first load."""
    return re.findall(r'<script[^>]* src="([^"]+)"', html) + re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)


def test_the_page_is_served_without_credentials_and_without_user_data(client):
    # when: anyone opens the page (the token stays in the URL fragment, which the server never sees)
    response = client.get(COACH)

    # then: the frame only; the script reads the token and asks the REST API
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "<h1>Your coach</h1>" in html
    assert 'data-api-root="/api/crm/"' in html
    assert 'id="ask-message"' in html
    assert 'for="ask-message"' in html  # the question box has a label
    assert "sessionid" not in response.cookies
    assert "csrftoken" not in response.cookies


def test_the_page_has_a_strict_content_security_policy_and_no_inline_script(client):
    response = client.get(COACH)

    assert response["Content-Security-Policy"] == COACH_PAGE_CSP
    directives = dict(part.split(" ", 1) for part in COACH_PAGE_CSP.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in COACH_PAGE_CSP
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    # every <script> has a src (no inline code) and no element carries an inline style or handler
    assert re.findall(r"<script(?![^>]* src=)[^>]*>", html) == []
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)


def test_only_get_and_head_are_allowed(client):
    assert client.head(COACH)["Content-Security-Policy"] == COACH_PAGE_CSP
    assert client.post(COACH).status_code == 405


def test_the_first_load_is_under_100_kb(client):
    # given the page and everything it loads before the first API call
    response = client.get(COACH)
    html = response.content
    assets = _assets(html.decode())
    assert sorted(Path(url).name for url in assets) == ["coach.css", "coach.js"]

    # when each asset is fetched as a browser would (served by WhiteNoise)
    sizes = {"html": len(html)}
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        sizes[url] = len(b"".join(asset.streaming_content))

    # then: the uncompressed total stays under the budget
    total = sum(sizes.values())
    assert total < FIRST_LOAD_BUDGET_BYTES, sizes
    assert sizes["html"] > 1000  # the budget measures real files, not empty answers


def test_the_script_never_parses_data_as_html():
    # Data reach the page through textContent and text nodes only (docs/coach.md "The coaching page").
    script = (WEBAPP / "static" / "webapp" / "coach.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


@pytest.mark.parametrize("path", ["/coach", "/coach/anything"])
def test_other_paths_are_not_the_page(client, path):
    response = client.get(path, follow=False)
    assert response.status_code in {301, 404}
    if response.status_code == 301:
        assert response["Location"] == COACH
