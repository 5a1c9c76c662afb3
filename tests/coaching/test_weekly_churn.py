"""Weekly churn: fresh scores, one coach-proposed retention action per at-risk user, consent rules."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from coaching.models import AiInsight, InsightType, JobRun, RetentionAction
from coaching.providers import OfflineCoach, retention_action_for_drivers
from coaching.retention_actions import retention_action_propose, weekly_churn_run
from goals.models import GoalMetric, GoalStatus
from tests.factories import FoodLogFactory, GoalFactory, ProfileFactory
from tests.support import USER_A

FREQUENCY = [{"feature": "active_days_ratio", "label": "Fewer active days than usual", "contribution": 0.4}]
GOALS = [{"feature": "goal_progress", "label": "Far from their goals", "contribution": 0.5}]


def at_risk(user_id: str, *, drivers=None, **fields):
    factors = {"daysInactive": 12.0, "activities30d": 2}
    if drivers is not None:
        factors["drivers"] = drivers
    return ProfileFactory(
        user_id=user_id, churn_risk=Decimal("0.8"), churn_band="high", churn_factors=factors, **fields
    )


def gone(user_id: str, **fields):
    now = timezone.now()
    profile = ProfileFactory(user_id=user_id, last_active_at=now - dt.timedelta(days=20), **fields)
    FoodLogFactory(user=profile, occurred_at=now - dt.timedelta(days=20))
    return profile


def test_the_offline_choice_follows_the_strongest_driver_within_the_allowed_actions():
    in_app = ["streak_restart", "easier_goal"]
    everything = [*in_app, "reminder", "staff_call"]
    goal = [{"metric": "protein_g", "value": 120.0, "unit": "g", "progressPct": 30.0}]
    assert retention_action_for_drivers(churn={"drivers": FREQUENCY}, goals=[], tier="silver", allowed=everything) == (
        "reminder"
    )
    assert retention_action_for_drivers(churn={"drivers": FREQUENCY}, goals=[], tier="silver", allowed=in_app) == (
        "streak_restart"
    )
    assert retention_action_for_drivers(churn={"drivers": GOALS}, goals=goal, tier="silver", allowed=in_app) == (
        "easier_goal"
    )
    # no drivers at all (a fallback score): active goals -> easier goal, else a streak restart
    assert retention_action_for_drivers(churn={}, goals=goal, tier="bronze", allowed=in_app) == "easier_goal"
    assert retention_action_for_drivers(churn={}, goals=[], tier="bronze", allowed=in_app) == "streak_restart"
    high = {"band": "high", "drivers": FREQUENCY}
    assert retention_action_for_drivers(churn=high, goals=[], tier="gold", allowed=everything) == "staff_call"
    assert retention_action_for_drivers(churn=high, goals=[], tier="gold", allowed=in_app) == "streak_restart"


@pytest.mark.django_db
def test_a_reminder_needs_marketing_consent_else_an_in_app_action():
    now = timezone.now()
    with_marketing = at_risk("mk_yes", drivers=FREQUENCY, consent_marketing=True)
    without = at_risk("mk_no", drivers=FREQUENCY, consent_marketing=False)

    yes = retention_action_propose(profile=with_marketing, provider=OfflineCoach(), now=now)
    no = retention_action_propose(profile=without, provider=OfflineCoach(), now=now)

    assert yes.action_type == "reminder"
    assert no.action_type == "streak_restart"
    assert AiInsight.objects.get(pk=yes.insight_id).metadata["channel"] == "outside_app"
    assert AiInsight.objects.get(pk=no.insight_id).metadata["channel"] == "in_app"


@pytest.mark.django_db
def test_the_action_is_stored_with_its_insight_band_risk_drivers_and_outcome_window():
    now = timezone.now()
    profile = at_risk("stored", drivers=GOALS)
    GoalFactory(user=profile, metric=GoalMetric.PROTEIN_G, goal_value=Decimal("120"), status=GoalStatus.ACTIVE)

    action = retention_action_propose(profile=profile, provider=OfflineCoach(), now=now)

    assert (action.action_type, action.source, action.churn_band, action.churn_risk) == (
        "easier_goal",
        "job",
        "high",
        Decimal("0.800"),
    )
    assert action.drivers == GOALS
    assert action.outcome_due_at - action.created_at == dt.timedelta(days=14)
    assert action.returned is None
    insight = AiInsight.objects.get(pk=action.insight_id)
    assert insight.insight_type == InsightType.RETENTION
    assert insight.source == "churn_job"
    assert "protein goal of 120 g/day is at 0 %" in insight.body
    assert "Try 90 g/day" in insight.recommendation
    # a missing "drivers" key is fine
    assert retention_action_propose(profile=at_risk("no_drivers"), provider=OfflineCoach(), now=now) is not None


@pytest.mark.django_db
def test_weekly_job_refreshes_scores_then_acts_only_for_the_seeds_selection_once_a_week():
    now = timezone.now()
    active = ProfileFactory(user_id="active", last_active_at=now)
    for day in range(10):
        FoodLogFactory(user=active, occurred_at=now - dt.timedelta(days=day, hours=1))
    gone("gone")
    gone("gone_no_ai", consent_ai_processing=False)

    result = weekly_churn_run(now=now)

    assert result.details["assessed"] == 3
    assert (result.considered, result.processed, result.failed) == (1, 1, 0)
    action = RetentionAction.objects.get()
    assert action.user_id == "gone"
    assert action.action_type in ("streak_restart", "easier_goal")  # no marketing consent: in-app only
    assert weekly_churn_run(now=now + dt.timedelta(days=1)).processed == 0  # not again within a week


@pytest.mark.django_db
def test_command_dry_run_writes_nothing_and_user_limits(capsys):
    gone("cmd_gone_1")
    gone("cmd_gone_2")

    call_command("assess_churn", "--dry-run")
    assert "dry run, nothing written" in capsys.readouterr().out
    assert RetentionAction.objects.count() == AiInsight.objects.count() == JobRun.objects.count() == 0

    call_command("assess_churn", "--user", "cmd_gone_2")
    assert list(RetentionAction.objects.values_list("user_id", flat=True)) == ["cmd_gone_2"]
    run = JobRun.objects.get()
    assert (run.job, run.trigger, run.considered, run.processed) == ("assess-churn", "command", 1, 1)


@pytest.mark.django_db
def test_staff_and_services_record_actions_end_users_cannot(staff_client, service_client, client_a):
    at_risk(USER_A, drivers=FREQUENCY, consent_marketing=False)
    url = f"/api/crm/users/{USER_A}/retention-actions"

    created = staff_client.post(url, {"actionType": "streak_restart"}, format="json")
    assert created.status_code == 201
    data = created.json()["data"]
    assert (data["source"], data["actorId"], data["churnBand"], data["returned"]) == ("staff", "carol", "high", None)

    refused = service_client.post(url, {"actionType": "staff_call"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "marketing_consent_required"
    assert service_client.post(url, {"actionType": "nope"}, format="json").status_code == 400
    assert client_a.post(url, {"actionType": "streak_restart"}, format="json").status_code == 403
    assert RetentionAction.objects.count() == 1
