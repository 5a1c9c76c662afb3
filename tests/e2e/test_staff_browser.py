"""The staff back office in a real browser (Debian chromium driven by Playwright) against a live server:
staff open the churn dashboard, filter the high churn band, export it as CSV, open a user's 360 page;
a member of the "CRM viewer" group cannot erase. Saves docs/img/dashboard.png and docs/img/user-360.png
(1400 px wide) into CRM_SCREENSHOT_DIR when it is set (`CRM_SCREENSHOT_DIR=docs/img`)."""

from __future__ import annotations

import csv
import importlib
import io
import os
import shutil
import struct

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from coaching.lifecycle import engagement_daily_refresh
from compliance.models import AuditLog
from demo.data import demo_users_create
from profiles.models import CrmUserProfile
from tests.staff_data import churn_history_seed, retention_actions_seed

WIDTH = 1400
DEMO_USERS = 150

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _crm_viewer_group() -> Group:
    """The group the data migration created. An earlier transactional test's flush empties auth_group
    (data migrations do not run again), so it is recreated here by the migration's own function."""
    if not Group.objects.filter(name="CRM viewer").exists():
        migration = importlib.import_module("profiles.migrations.0005_crm_viewer_group")
        migration.crm_viewer_group_create(django_apps, None)
    return Group.objects.get(name="CRM viewer")


def _png_width(path) -> int:
    with open(path, "rb") as png:
        header = png.read(24)
    return struct.unpack(">I", header[16:20])[0]


def _screenshot(page, tmp_path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert _png_width(path) == WIDTH
    assert path.stat().st_size > 30_000
    if os.environ.get("CRM_SCREENSHOT_DIR"):
        shutil.copy(path, os.environ["CRM_SCREENSHOT_DIR"])


def _login(browser, live_server, username: str, password: str):
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000}, accept_downloads=True)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#content")
    return page


def test_staff_dashboard_segment_export_and_360_and_a_viewer_cannot_erase(live_server, browser, tmp_path):
    # given demo users scored by the churn model, with 12 weeks of history and retention outcomes
    demo_users_create(numbers=list(range(1, DEMO_USERS + 1)), days=60, seed=7)
    engagement_daily_refresh()  # lifecycle stages and tiers, as the daily job sets them
    churn_history_seed()
    retention_actions_seed()
    high = set(CrmUserProfile.objects.filter(churn_band="high").values_list("user_id", flat=True))
    assert high
    get_user_model().objects.create_superuser("lead", "", "a-long-staff-password")
    viewer = get_user_model().objects.create_user("watcher", password="a-long-viewer-password", is_staff=True)
    viewer.groups.add(_crm_viewer_group())

    # when staff open the dashboard from the admin index
    page = _login(browser, live_server, "lead", "a-long-staff-password")
    page.click("text=Churn dashboard")
    page.wait_for_selector("#high-risk")
    # then it shows every user, five charts drawn on the server, and the high-risk list
    assert page.inner_text("#kpi-total") == str(DEMO_USERS)
    assert page.locator("svg.pygal-chart").count() == 5
    assert page.locator("#chart-trend tbody tr").count() == 12
    assert "streak_restart" in page.inner_text("#outcomes")
    first_listed = page.locator("#high-risk tbody tr a").first.inner_text()
    assert first_listed in high
    _screenshot(page, tmp_path, "dashboard.png")

    # when they filter the high churn band and export it
    page.click("text=All high-risk users")
    page.wait_for_selector("#result_list")
    listed = set(page.locator("#result_list tbody th a").all_inner_texts())
    assert listed
    assert listed <= high
    with page.expect_download() as download_info:
        page.click("#crm-export-csv")
    exported = list(csv.DictReader(io.StringIO(open(download_info.value.path()).read())))  # noqa: SIM115
    # then the CSV holds exactly the high band, contacts only as hashes, and the export is audited
    assert {row["user_id"] for row in exported} == high
    assert {row["churn_band"] for row in exported} == {"high"}
    assert "email" not in exported[0]
    audit = AuditLog.objects.get(action="profiles.exported")
    assert (audit.actor_type, audit.actor_id, audit.changes["rows"]) == ("staff", "lead", len(high))

    # when they open a user's 360 page from the list
    page.click(f"#result_list >> text={first_listed}")
    page.wait_for_selector("text=User 360")
    body = page.inner_text("body")
    for part in ("Engagement", "Nutrition (7 days)", "Goals", "Recent activities", "Audit trail"):
        assert part in body
    _screenshot(page, tmp_path, "user-360.png")
    profile_url = page.url

    # and a viewer opens the same page: no delete link, and the erase page is refused
    viewer_page = _login(browser, live_server, "watcher", "a-long-viewer-password")
    viewer_page.goto(profile_url)
    viewer_page.wait_for_selector("text=User 360")
    assert viewer_page.locator("a.deletelink").count() == 0
    assert viewer_page.locator("input[name=_save]").count() == 0
    response = viewer_page.goto(profile_url.rstrip("/").rsplit("/", 1)[0] + "/delete/")
    assert response.status == 403
    assert CrmUserProfile.objects.filter(user_id=first_listed).exists()
