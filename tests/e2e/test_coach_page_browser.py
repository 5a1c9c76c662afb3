"""The coaching page (`/coach/`) as an end user uses it on a phone, in a real browser (Debian chromium
driven by Playwright) against a live server: the link from `manage.py coach_link`, asking the coach,
accepting its goal, and the messages for an expired link, missing consent, the rate limit and the
built-in coach standing in for the AI model."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import struct
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from coaching.models import AiInsight
from goals.models import GoalStatus, HealthGoal
from profiles.models import CrmUserProfile
from tests.coaching.support import seed_food_week
from tests.factories import InsightFactory, ProfileFactory
from tests.support import free_port
from webapp.links import coach_link_token
from yahealthy_crm.ratelimit import AI_ASK_RATE, rate_limit_take

PHONE = {"width": 375, "height": 812}
USER = "ella_e2e"
TOKEN_KEY = "yahealthy.coach.token"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone_page(browser):
    page = browser.new_page(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.console_errors = console_errors
    return page


@pytest.fixture
def offline_coach(settings):
    settings.COACH_PROVIDER = "offline"
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = ""


@pytest.fixture
def ella(db):
    # An app user who logged about 80 g of protein a day for a week (75 kg: 1.6 g/kg is 120 g).
    profile = ProfileFactory(user_id=USER, current_weight_kg=Decimal("75.0"))
    seed_food_week(profile, protein_per_day=80)
    return profile


def _coach_link(user_id: str, base_url: str) -> str:
    out = io.StringIO()
    call_command("coach_link", user_id, "--base-url", base_url, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def _png_size(path) -> tuple[int, int]:
    with open(path, "rb") as png:
        header = png.read(24)
    return struct.unpack(">II", header[16:24])


def _spinner_watch(page) -> None:
    """Record whether the spinner was shown (the offline coach answers in milliseconds)."""
    page.evaluate(
        """() => {
            window.sawSpinner = false;
            const status = document.getElementById("ask-status");
            new MutationObserver(() => {
                if (status.querySelector(".spinner") && document.getElementById("ask-button").disabled) {
                    window.sawSpinner = true;
                }
            }).observe(status, {childList: true});
        }"""
    )


def test_end_user_asks_for_a_protein_goal_accepts_it_and_sees_it_among_active_goals(
    live_server, phone_page, offline_coach, ella, tmp_path
):
    from playwright.sync_api import expect

    # given an open insight whose title holds markup, and the link `coach_link` prints
    InsightFactory(user=ella, title="<img src=x id=injected> Drink more water", body="Body & <b>soul</b>")
    link = _coach_link(USER, live_server.url)
    token = link.split("#token=", 1)[1]
    page = phone_page
    sent: list[tuple[str, str | None]] = []
    page.on("request", lambda request: sent.append((request.url, request.headers.get("authorization"))))

    # when she opens the link on her phone
    page.goto(link)

    # then the page shows her data; the token left the address bar for session storage
    expect(page.locator("#app")).to_be_visible()
    assert "token" not in page.url
    assert page.url == f"{live_server.url}/coach/"
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") == token
    expect(page.locator("#insights h3").first).to_have_text("<img src=x id=injected> Drink more water")
    assert page.locator("#injected").count() == 0  # data are text, never markup
    expect(page.locator("#insights")).to_contain_text("Body & <b>soul</b>")
    expect(page.locator("#nutrition-chart svg rect.bar:not(.empty)")).to_have_count(7)
    expect(page.locator("#metrics")).to_contain_text("Current streak")
    expect(page.locator("#active-goals")).to_contain_text("No active goals yet")
    expect(page.locator("#history")).to_contain_text("No conversations yet")

    # when she asks the protein question
    _spinner_watch(page)
    page.fill("#ask-message", "Help me set a protein goal.")
    page.click("#ask-button")

    # then: the answer, the tools it used, a spinner while it thought, and the suggested goal
    expect(page.locator("#answer")).to_be_visible()
    expect(page.locator("#answer-text")).to_contain_text("protein goal of 120 g/day")
    expect(page.locator("#answer-tools")).to_contain_text("suggest_goal")
    expect(page.locator("#answer-tools")).to_contain_text("get_user_nutrition_summary")
    assert page.evaluate("window.sawSpinner") is True
    expect(page.locator("#ask-status")).to_have_text("Your coach answered.")
    expect(page.locator("#answer-fallback")).to_be_hidden()
    accept = page.get_by_role("button", name="Accept goal: Protein: 120 g a day")
    expect(accept).to_be_visible()
    expect(page.locator("#history")).to_contain_text("Help me set a protein goal.")

    # when she accepts it with the keyboard
    accept.focus()
    page.keyboard.press("Enter")

    # then it is among her active goals, with a progress bar, and no longer a suggestion
    expect(page.locator("#goal-status")).to_contain_text("Goal accepted: Protein: 120 g a day")
    active = page.locator("#active-goals li", has_text="Protein: 120 g a day")
    expect(active).to_have_count(1)
    expect(active.locator("progress")).to_have_count(1)
    expect(page.locator("#suggested-goals")).not_to_contain_text("Protein: 120 g a day")
    goal = HealthGoal.objects.get(user_id=USER, metric="protein_g")
    assert goal.status == GoalStatus.ACTIVE
    assert goal.accepted_at is not None
    # the chart now shows protein against the goal's target line
    expect(page.locator("#nutrition-chart svg line.target")).to_have_count(1)
    expect(page.locator("#nutrition-caption")).to_contain_text("Target 120 g a day")

    # when she dismisses the older insight
    markup_insight = AiInsight.objects.get(user_id=USER, title__startswith="<img")
    page.get_by_role("button", name="Dismiss insight: <img src=x id=injected> Drink more water").click()

    # then it is gone from the page and stored as dismissed; the coach's new insight stays
    expect(page.locator("#insight-status")).to_contain_text("Insight dismissed")
    expect(page.locator("#insights")).not_to_contain_text("Drink more water")
    expect(page.locator("#insights")).to_contain_text("Raise your protein to 120 g a day")
    markup_insight.refresh_from_db()
    assert markup_insight.dismissed_at is not None

    # and the token was only ever sent as a Bearer header to the API, never in a URL
    assert sent
    assert all(token not in url for url, _ in sent)
    api_calls = [(url, auth) for url, auth in sent if "/api/crm/" in url]
    assert len(api_calls) >= 10
    assert {auth for _, auth in api_calls} == {f"Bearer {token}"}
    assert all(auth is None for url, auth in sent if "/api/crm/" not in url)

    # and the page fits the phone's width (no sideways scrolling), without script errors
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.console_errors == []
    screenshot = tmp_path / "coach-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert _png_size(screenshot)[0] == PHONE["width"]
    assert screenshot.stat().st_size > 20_000
    if os.environ.get("CRM_SCREENSHOT_DIR"):
        shutil.copy(screenshot, os.environ["CRM_SCREENSHOT_DIR"])


def test_an_expired_link_shows_the_expired_message(live_server, phone_page, ella):
    from playwright.sync_api import expect

    # given a link that lived one minute and was made two minutes ago (past the 30 s leeway)
    token = coach_link_token(user_id=USER, minutes=1, now=timezone.now() - dt.timedelta(minutes=2))
    page = phone_page

    page.goto(f"{live_server.url}/coach/#token={token}")

    expect(page.locator("#gate-title")).to_have_text("Your coaching link has expired")
    expect(page.locator("#gate-text")).to_contain_text("open the coach again")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    assert "token" not in page.url


def test_without_a_link_the_page_says_where_to_open_it(live_server, phone_page):
    from playwright.sync_api import expect

    phone_page.goto(f"{live_server.url}/coach/")

    expect(phone_page.locator("#gate-title")).to_have_text("Open the coach from the YAHealthy app")
    expect(phone_page.locator("#app")).to_be_hidden()


def test_consent_rate_limit_and_built_in_coach_messages(live_server, phone_page, ella, settings):
    from playwright.sync_api import expect

    # given a user who withdrew AI consent
    CrmUserProfile.objects.filter(user_id=USER).update(consent_ai_processing=False)
    page = phone_page
    page.goto(_coach_link(USER, live_server.url))
    expect(page.locator("#app")).to_be_visible()

    # an empty question is caught on the page, with the focus back in the box
    page.click("#ask-button")
    expect(page.locator("#ask-error")).to_have_text("Type a question for your coach first.")
    expect(page.locator("#ask-message")).to_be_focused()

    # then the page says how to grant it, before she even asks; and asking answers the same
    expect(page.locator("#consent")).to_be_visible()
    expect(page.locator("#consent")).to_contain_text("privacy settings")
    page.fill("#ask-message", "How am I doing?")
    page.click("#ask-button")
    expect(page.locator("#consent")).to_be_visible()
    expect(page.locator("#answer")).to_be_hidden()

    # when she grants it on the page
    page.click("#consent-grant")
    expect(page.locator("#consent")).to_be_hidden()
    expect(page.locator("#ask-status")).to_contain_text("ask your question again")
    assert CrmUserProfile.objects.get(user_id=USER).consent_ai_processing is True

    # given the AI model cannot be reached (nothing listens on its port)
    settings.COACH_PROVIDER = "openai"
    settings.OPENAI_API_KEY = "sk-test-unreachable"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    settings.COACH_MAX_RETRIES = 0
    settings.COACH_TIMEOUT_S = 5.0

    # when she asks, the built-in coach answers and the page says so
    page.click("#ask-button")
    expect(page.locator("#answer")).to_be_visible()
    expect(page.locator("#answer-fallback")).to_be_visible()
    expect(page.locator("#answer-fallback")).to_contain_text("built-in coach")
    assert not page.locator("#answer-text").inner_text().startswith("(The AI model is unavailable")

    # given she used up her asks for this minute
    for _ in range(20):
        if not rate_limit_take(group="coaching.ask", key_value=USER, rate=AI_ASK_RATE).allowed:
            break

    # when she asks again: try again in N s (from Retry-After), and the button waits
    page.click("#ask-button")
    expect(page.locator("#ask-error")).to_have_text(
        re.compile(r"You've asked a lot in a short time\. Try again in \d+ s\.")
    )
    expect(page.locator("#ask-button")).to_be_disabled()
