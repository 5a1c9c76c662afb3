"""Staff pages in admin: segments (list filters, search), CSV export with its audit row, the churn
dashboard and the user 360 page with bounded queries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from coaching.models import ChurnScoreWeekly
from compliance.models import AuditLog
from profiles.models import CrmUserProfile
from tests.factories import (
    FoodLogFactory,
    GoalFactory,
    InsightFactory,
    ProfileFactory,
    RetentionActionFactory,
    days_ago,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:profiles_crmuserprofile_changelist")
EXPORT = reverse("admin:profiles_crmuserprofile_export")
DASHBOARD = reverse("admin:crm_churn_dashboard")


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "", "pw-123456789"))
    return client


def _profile(user_id: str, **fields) -> CrmUserProfile:
    fields.setdefault("last_active_at", timezone.now())
    profile = ProfileFactory(user_id=user_id, **fields)
    if "created_at" in fields:  # auto_now_add ignores the factory's value
        CrmUserProfile.objects.filter(pk=profile.pk).update(created_at=fields["created_at"])
    return profile


@pytest.fixture
def segment_users():
    old = timezone.now() - dt.timedelta(days=60)
    return {
        "risky": _profile(
            "seg_risky",
            churn_risk=Decimal("0.9"),
            churn_band="high",
            engagement_tier="bronze",
            lifecycle_stage="dormant",
            primary_goal="weight_loss",
            last_active_at=days_ago(20),
            consent_ai_processing=False,
            email_hash="e" * 64,
        ),
        "steady": _profile(
            "seg_steady",
            churn_risk=Decimal("0.1"),
            churn_band="low",
            engagement_tier="gold",
            lifecycle_stage="current",
            primary_goal="muscle_gain",
            last_active_at=days_ago(1),
        ),
        "slipping": _profile(
            "seg_slipping",
            churn_risk=Decimal("0.6"),
            churn_band="medium",
            engagement_tier="silver",
            lifecycle_stage="current",
            primary_goal="general_health",
            last_active_at=days_ago(9),
        ),
        "never": _profile("seg_never", last_active_at=None, created_at=old),
        "newcomer": _profile("seg_newcomer", last_active_at=None, lifecycle_stage="new"),
    }


def _listed(client, **params) -> set[str]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {p.user_id for p in response.context["cl"].queryset}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"churn_band": "high"}, {"seg_risky"}),
        ({"churn_band": "medium"}, {"seg_slipping"}),
        ({"engagement_tier__exact": "gold"}, {"seg_steady"}),
        ({"lifecycle_stage__exact": "dormant"}, {"seg_risky"}),
        ({"primary_goal__exact": "muscle_gain"}, {"seg_steady"}),
        ({"inactive_days": "7"}, {"seg_risky", "seg_slipping", "seg_never"}),
        ({"inactive_days": "14"}, {"seg_risky", "seg_never"}),
        ({"inactive_days": "30"}, {"seg_never"}),
        ({"consent_ai_processing__exact": "0"}, {"seg_risky"}),
        ({"q": "slip"}, {"seg_slipping"}),
        ({"churn_band": "high", "inactive_days": "14", "q": "seg_"}, {"seg_risky"}),
    ],
)
def test_user_list_filters_segments(admin_client, segment_users, params, expected):
    assert _listed(admin_client, **params) == expected


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_export_csv_follows_the_current_filters_and_is_audited_as_staff(admin_client, segment_users):
    # given the list filtered to users inactive for 7+ days and not high risk... and the export link on it
    page = admin_client.get(CHANGELIST, {"inactive_days": "7"})
    link = re.search(r'id="crm-export-csv" href="([^"]+)"', page.content.decode()).group(1)
    assert "inactive_days=7" in link
    # when
    response = admin_client.get(link.replace("&amp;", "&"))
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _csv(response)
    assert {row["user_id"] for row in rows} == {"seg_risky", "seg_slipping", "seg_never"}
    risky = next(row for row in rows if row["user_id"] == "seg_risky")
    assert risky["churn_band"] == "high"
    assert risky["email_hash"] == "e" * 64  # contacts only as the stored keyed hashes
    assert risky["consent_ai_processing"] == "false"
    assert "email" not in rows[0]
    audit = AuditLog.objects.get(action="profiles.exported")
    assert (audit.actor_type, audit.actor_id, audit.entity_type) == ("staff", "boss", "profile_segment")
    assert audit.changes == {"filters": {"inactive_days": "7"}, "rows": 3, "format": "csv"}


def test_export_writes_cells_that_a_spreadsheet_would_run_as_formulas_as_text(admin_client):
    _profile("=HYPERLINK(1)")
    rows = _csv(admin_client.get(EXPORT, {"q": "HYPERLINK"}))
    assert [row["user_id"] for row in rows] == ["'=HYPERLINK(1)"]


def test_export_of_selected_users_by_admin_action(admin_client, segment_users):
    selected = [segment_users["steady"].pk, segment_users["never"].pk]
    response = admin_client.post(CHANGELIST, {"action": "export_selected_csv", "_selected_action": selected})
    assert response.status_code == 200
    assert {row["user_id"] for row in _csv(response)} == {"seg_steady", "seg_never"}
    assert AuditLog.objects.get(action="profiles.exported").changes["filters"] == {"selectedUsers": 2}


def test_export_with_an_unknown_filter_is_a_400(admin_client):
    assert admin_client.get(EXPORT, {"no_such_field": "1"}).status_code == 400
    assert not AuditLog.objects.filter(action="profiles.exported").exists()


def test_admin_index_links_the_churn_dashboard(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{DASHBOARD}"' in page


def test_churn_dashboard_shows_bands_stages_charts_and_links_the_high_risk_users(admin_client, segment_users):
    # when
    response = admin_client.get(DASHBOARD)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    dashboard = response.context["dashboard"]
    assert dashboard.by_band == {"low": 3, "medium": 1, "high": 1}
    for part in ("chart-bands", "chart-stages", "chart-histogram", "chart-trend", "outcomes", "high-risk"):
        assert f'id="{part}"' in html
    assert html.count('class="pygal-chart"') == 5
    risky_360 = reverse("admin:profiles_crmuserprofile_change", args=[segment_users["risky"].pk])
    assert f'href="{risky_360}"' in html
    assert f'{CHANGELIST}?churn_band=high"' in html


def test_dashboard_charts_load_nothing_from_the_internet(admin_client, segment_users):
    html = admin_client.get(DASHBOARD).content.decode()
    svgs = re.findall(r'<svg[^>]*class="pygal-chart".*?</svg>', html, flags=re.S)
    assert len(svgs) == 5
    for svg in svgs:
        assert "<script" not in svg
        assert not re.search(r"""(?:href|src)\s*=\s*["'](?:https?:)?//""", svg)
        assert "@import" not in svg
        assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", svg)
        # the only URL left is the SVG namespace name, which is never fetched
        assert set(re.findall(r"https?://[^\s\"'<>]+", svg)) <= {"http://www.w3.org/2000/svg"}


def _many_users(prefix: str, n: int) -> None:
    CrmUserProfile.objects.bulk_create(
        [
            CrmUserProfile(
                user_id=f"{prefix}_{i}",
                churn_risk=Decimal(str(round(0.3 + (i % 7) / 10, 3))),
                churn_band=["low", "medium", "high"][i % 3],
                lifecycle_stage=["new", "current", "resurrected", "dormant"][i % 4],
            )
            for i in range(n)
        ]
    )


def test_dashboard_query_count_does_not_grow_with_users(admin_client, django_assert_max_num_queries):
    _many_users("few", 3)
    admin_client.get(DASHBOARD)  # warm up: session, content types
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(DASHBOARD).status_code == 200
    _many_users("many", 300)
    with django_assert_max_num_queries(len(few)):
        assert admin_client.get(DASHBOARD).status_code == 200
    assert len(few) <= 10


def _user_with_history(user_id: str, rows: int) -> CrmUserProfile:
    profile = _profile(user_id, churn_risk=Decimal("0.8"), churn_band="high")
    for i in range(rows):
        GoalFactory(user=profile)
        FoodLogFactory(user=profile, occurred_at=days_ago(i % 10))
        InsightFactory(user=profile)
    return profile


def test_user_360_query_count_does_not_grow_with_users_or_history(admin_client, django_assert_max_num_queries):
    small = _user_with_history("h360_small", 1)
    url = reverse("admin:profiles_crmuserprofile_change", args=[small.pk])
    admin_client.get(url)  # warm up
    with CaptureQueriesContext(connection) as baseline:
        assert admin_client.get(url).status_code == 200
    big = _user_with_history("h360_big", 30)
    _many_users("crowd", 200)
    with django_assert_max_num_queries(len(baseline)):
        page = admin_client.get(reverse("admin:profiles_crmuserprofile_change", args=[big.pk]))
    assert page.status_code == 200
    assert "User 360" in page.content.decode()
    assert len(baseline) <= 30


def test_user_360_shows_the_weekly_churn_risk_and_retention_actions(admin_client):
    # given a user scored this week and last week, with one retention action that worked
    profile = _profile("h360_history", churn_risk=Decimal("0.8"), churn_band="high")
    today = timezone.localdate()
    monday = today - dt.timedelta(days=today.weekday())
    for weeks_ago, risk in ((0, "0.800"), (1, "0.550")):
        ChurnScoreWeekly.objects.create(
            user=profile,
            week=monday - dt.timedelta(weeks=weeks_ago),
            churn_risk=Decimal(risk),
            churn_band="high" if weeks_ago == 0 else "medium",
            engagement_tier="bronze",
            lifecycle_stage="current",
        )
    RetentionActionFactory(
        user=profile,
        action_type="streak_restart",
        churn_risk=Decimal("0.55"),
        churn_band="medium",
        created_at=days_ago(20),
        outcome_due_at=days_ago(6),
        returned=True,
    )
    # when
    html = admin_client.get(reverse("admin:profiles_crmuserprofile_change", args=[profile.pk])).content.decode()
    # then
    chart = re.search(r'<svg[^>]*class="pygal-chart".*?</svg>', html, flags=re.S).group(0)
    assert "80 %" in chart
    assert "55 %" in chart
    assert "<script" not in chart
    assert "streak_restart" in html
    assert "came back" in html


def test_user_360_without_weekly_scores_says_so(admin_client):
    profile = _profile("h360_unscored")
    html = admin_client.get(reverse("admin:profiles_crmuserprofile_change", args=[profile.pk])).content.decode()
    assert "not scored by the weekly churn job yet" in html


def test_dashboard_of_a_new_deployment_without_users_or_scores(admin_client):
    response = admin_client.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No user in the high band." in html
    assert html.count('class="pygal-chart"') == 5
