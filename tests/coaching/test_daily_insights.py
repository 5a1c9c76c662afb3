"""Daily insights: the coach provider writes one insight + recommendation per engaged user and day."""

import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from coaching.daily_insights import daily_insight_for_user, daily_insights_generate
from coaching.models import AiInsight, InsightSource, JobRun
from coaching.providers import OfflineCoach
from goals.models import GoalMetric, GoalStatus
from tests.coaching.fake_openai import Status, completion
from tests.coaching.support import seed_food_week
from tests.factories import GoalFactory, ProfileFactory


def engaged(user_id: str, **fields):
    profile = ProfileFactory(user_id=user_id, engagement_tier="silver", last_active_at=timezone.now(), **fields)
    seed_food_week(profile, protein_per_day=80, days=3)
    return profile


@pytest.mark.django_db
def test_one_insight_per_user_and_day_from_the_users_numbers():
    profile = engaged("daily_1")
    GoalFactory(user=profile, metric=GoalMetric.PROTEIN_G, goal_value=Decimal("120"), status=GoalStatus.ACTIVE)

    first = daily_insights_generate()
    second = daily_insights_generate()

    assert (first.considered, first.processed, first.skipped, first.failed) == (1, 1, 0, 0)
    assert (second.considered, second.processed, second.skipped) == (1, 0, 1)
    insight = AiInsight.objects.get(user_id="daily_1")
    assert insight.source == InsightSource.DAILY_JOB
    assert insight.insight_date == timezone.localdate()
    assert insight.title == "Your protein is below your goal"
    assert "averaged 80 g/day against a goal of 120 g/day (3 of 7 days logged)" in insight.body
    assert insight.recommendation.startswith("Add a palm-sized protein portion")
    assert insight.metadata["provider"] == "offline"


@pytest.mark.django_db
def test_the_constraint_refuses_a_second_insight_the_same_day_even_past_the_pre_check():
    profile = engaged("daily_race")
    today = timezone.localdate()
    provider = OfflineCoach()
    # Two runs that both passed the "already has today's" pre-check: the constraint decides.
    assert daily_insight_for_user(profile=profile, today=today, provider=provider) is not None
    assert daily_insight_for_user(profile=profile, today=today, provider=provider) is None
    assert AiInsight.objects.filter(user_id="daily_race").count() == 1


@pytest.mark.django_db
def test_only_silver_or_better_active_in_the_past_day_with_ai_consent():
    engaged("ok")
    engaged("no_ai", consent_ai_processing=False)
    bronze = engaged("bronze")
    bronze.engagement_tier = "bronze"
    bronze.save()
    idle = ProfileFactory(
        user_id="idle", engagement_tier="gold", last_active_at=timezone.now() - timezone.timedelta(days=3)
    )
    assert idle

    result = daily_insights_generate()

    assert (result.considered, result.processed) == (1, 1)
    assert list(AiInsight.objects.values_list("user_id", flat=True)) == ["ok"]


@pytest.mark.django_db
def test_one_users_failure_is_recorded_and_the_others_get_their_insight():
    for user_id in ("first", "broken", "last"):
        engaged(user_id)
    # A real database refusal for one user's insight row.
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE crm_ai_insights ADD CONSTRAINT test_refuse_broken CHECK (user_id <> 'broken') NOT VALID"
        )

    result = daily_insights_generate()

    assert (result.considered, result.processed, result.failed) == (3, 2, 1)
    assert result.details["failures"][0]["userId"] == "broken"
    assert "test_refuse_broken" in result.details["failures"][0]["error"]
    assert sorted(AiInsight.objects.values_list("user_id", flat=True)) == ["first", "last"]


@pytest.mark.django_db
def test_the_openai_provider_writes_the_insight_and_a_failing_model_falls_back_offline(fake_openai, settings):
    settings.COACH_MAX_RETRIES = 0
    engaged("model_ok")
    engaged("model_down")
    answer = {
        "title": "Protein at 80 g",
        "body": "You averaged 80 g of protein on 3 logged days.",
        "recommendation": "Add Greek yoghurt at breakfast.",
        "insight_type": "nutrition",
    }
    fake_openai.script = [completion(content=json.dumps(answer)), Status(500)]

    result = daily_insights_generate()

    assert (result.processed, result.failed) == (2, 0)
    by_model = AiInsight.objects.get(user_id="model_ok")
    assert (by_model.title, by_model.recommendation) == ("Protein at 80 g", "Add Greek yoghurt at breakfast.")
    assert by_model.metadata["provider"] == "openai"
    assert by_model.metadata["fallbackReason"] is None
    offline = AiInsight.objects.get(user_id="model_down")
    assert offline.metadata == {**offline.metadata, "provider": "offline", "fallbackReason": "model_error"}
    request = fake_openai.chat_requests[0]
    assert request["response_format"] == {"type": "json_object"}
    assert "model_ok" not in fake_openai.all_sent_text()  # no identifiers leave the CRM


@pytest.mark.django_db
def test_command_dry_run_writes_nothing_and_user_limits_the_run(capsys):
    engaged("cmd_1")
    engaged("cmd_2")

    call_command("run_daily_insights", "--dry-run")
    out = capsys.readouterr().out
    assert "dry run, nothing written: considered 2, processed 2" in out
    assert AiInsight.objects.count() == 0
    assert JobRun.objects.count() == 0

    call_command("run_daily_insights", "--user", "cmd_2")
    assert list(AiInsight.objects.values_list("user_id", flat=True)) == ["cmd_2"]
    run = JobRun.objects.get()
    assert (run.job, run.trigger, run.considered, run.processed) == ("daily-insights", "command", 1, 1)
