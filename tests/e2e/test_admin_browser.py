"""The admin as CRM staff use it, in a real browser (Debian chromium driven by Playwright)."""

import pytest
from django.contrib.auth import get_user_model

from tests.factories import FoodLogFactory, GoalFactory, InsightFactory, ProfileFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(browser):
    return browser.new_page(viewport={"width": 1400, "height": 1000})


def test_staff_find_a_churning_user_and_read_their_360_view(live_server, browser_page, tmp_path):
    # given a staff account and two users, one of them about to churn
    get_user_model().objects.create_superuser("coach", "", "a-long-staff-password")
    risky = ProfileFactory(user_id="risky_rita", churn_risk=0.92, churn_band="high", engagement_tier="silver")
    GoalFactory(user=risky)
    FoodLogFactory(user=risky, protein_g=38)
    InsightFactory(user=risky, title="We miss you")
    ProfileFactory(user_id="steady_sam", churn_risk=0.05)
    page = browser_page

    # when staff log in and open the high-risk churn list
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "coach")
    page.fill("#id_password", "a-long-staff-password")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/profiles/crmuserprofile/?churn_band=high")

    # then only the churning user is listed, and her 360 view shows goals, activities and insights
    assert page.locator("#result_list").inner_text().count("risky_rita") == 1
    assert "steady_sam" not in page.locator("#result_list").inner_text()
    page.click("text=risky_rita")
    page.wait_for_selector("text=User 360")
    body = page.inner_text("body")
    assert "We miss you" in body
    assert "food_log" in body
    assert "nutrition" in body
    # docs/img/user-360.png comes from tests/e2e/test_staff_browser.py (fuller data); this one stays here.
    page.screenshot(path=str(tmp_path / "user-360.png"), full_page=True)
    assert (tmp_path / "user-360.png").stat().st_size > 10_000
