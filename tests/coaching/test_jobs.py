import datetime as dt
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from coaching.daily_insights import daily_insights_generate
from coaching.models import AiInsight, InsightSource
from coaching.retention_actions import weekly_churn_run
from goals.models import GoalStatus
from profiles.models import CrmUserProfile
from tests.factories import FoodLogFactory, GoalFactory, ProfileFactory


@pytest.mark.django_db
def test_weekly_churn_job_scores_everyone_and_nudges_only_inactive_consenting_users():
    now = timezone.now()
    active = ProfileFactory(user_id="active", last_active_at=now)
    for day in range(14):
        FoodLogFactory(user=active, occurred_at=now - dt.timedelta(days=day, hours=1))
    gone = ProfileFactory(user_id="gone", last_active_at=now - dt.timedelta(days=20))
    FoodLogFactory(user=gone, occurred_at=now - dt.timedelta(days=20))
    ProfileFactory(user_id="gone_no_consent", last_active_at=now - dt.timedelta(days=20), consent_ai_processing=False)

    result = weekly_churn_run(now=now)

    assert (result.details["assessed"], result.processed) == (3, 1)
    active.refresh_from_db()
    gone.refresh_from_db()
    assert gone.churn_risk > active.churn_risk  # the values are the churn model's (tests/coaching/test_churn*)
    assert gone.churn_factors["activities30d"] == 1
    assert AiInsight.objects.get(source=InsightSource.CHURN_JOB).user_id == "gone"
    # a second run the same week does not nudge again
    assert weekly_churn_run(now=now).processed == 0


@pytest.mark.django_db
def test_daily_insights_job_compares_the_week_with_the_goal_once_a_day():
    now = timezone.now()
    engaged = ProfileFactory(user_id="engaged", engagement_tier="gold", last_active_at=now)
    GoalFactory(user=engaged, goal_value=Decimal("120"), status=GoalStatus.ACTIVE)
    for day in range(3):
        FoodLogFactory(user=engaged, occurred_at=now - dt.timedelta(days=day), protein_g=Decimal("80"))
    ProfileFactory(user_id="bronze", engagement_tier="bronze", last_active_at=now)

    first = daily_insights_generate(now=now)
    assert (first.considered, first.processed) == (1, 1)
    insight = AiInsight.objects.get(user_id="engaged")
    assert "protein averaged 80 g/day" in insight.body
    assert "goal of 120 g/day" in insight.body
    second = daily_insights_generate(now=now)
    assert (second.considered, second.processed, second.skipped) == (1, 0, 1)


@pytest.mark.django_db
@override_settings(CRM_ADMIN_KEY="s3cret-admin-key")
def test_job_endpoint_requires_the_admin_key(client):
    url = "/api/crm/jobs/assess-churn"
    missing = client.post(url)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "authentication_failed"
    assert client.post(url, headers={"X-Admin-Key": "wrong"}).status_code == 401
    unknown = client.post("/api/crm/jobs/nope", headers={"X-Admin-Key": "s3cret-admin-key"})
    assert unknown.status_code == 404


@pytest.mark.django_db
@override_settings(CRM_ADMIN_KEY="")
def test_job_endpoint_is_disabled_without_a_configured_key(client):
    response = client.post("/api/crm/jobs/daily-insights", headers={"X-Admin-Key": ""})
    assert response.status_code == 401
    assert "CRM_ADMIN_KEY" in response.json()["error"]["message"]
    assert CrmUserProfile.objects.count() == 0
