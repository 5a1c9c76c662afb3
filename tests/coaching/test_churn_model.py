"""The churn model: fitted on this deployment's history, checked by a backtest, rhythm-relative."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coaching.churn_model import churn_backtest, churn_model_train, churn_scores_compute
from coaching.models import ChurnModel, ChurnScoreWeekly
from coaching.retention import churn_assess_users, churn_week_of
from demo.data import demo_users_create
from profiles.models import CrmUserProfile, churn_band_for
from tests.factories import FoodLogFactory, ProfileFactory, days_ago

pytestmark = pytest.mark.django_db


def _logs(profile, days: list[int]) -> None:
    for n in days:
        FoodLogFactory(user=profile, occurred_at=days_ago(n), logged_date=timezone.localdate(days_ago(n)))


def test_bands_have_one_home_and_the_documented_edges():
    assert [churn_band_for(r) for r in (0.0, 0.499, 0.5, 0.749, 0.75, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_without_history_the_fallback_rule_scores_and_says_so():
    ProfileFactory(user_id="new_user")

    model = churn_model_train()

    assert model.kind == "fallback_rule"
    assert model.is_active
    assert "Too little history" in model.notes
    (score,) = churn_scores_compute(user_ids=["new_user"], model=model)
    assert score.factors["model"] == "fallback_rule"
    assert score.factors["drivers"][0]["feature"] == "recency_ratio"


def test_the_score_follows_each_users_own_rhythm():
    """Three quiet days: normal for a weekly logger, unusual for a daily one (no fixed day threshold)."""
    weekly, daily = ProfileFactory(user_id="weekly"), ProfileFactory(user_id="daily")
    _logs(weekly, [3, 10, 17, 24, 31, 38])
    _logs(daily, [3, *range(4, 40)])

    scores = {s.user_id: s for s in churn_scores_compute(user_ids=["weekly", "daily"], model=None)}

    assert scores["weekly"].factors["daysInactive"] == scores["daily"].factors["daysInactive"] == 3
    assert scores["weekly"].factors["typicalGapDays"] == 7.0
    assert scores["daily"].factors["typicalGapDays"] == pytest.approx(1.0, abs=0.1)
    assert scores["weekly"].risk < 0.5 <= scores["daily"].risk


@pytest.fixture
def demo_history(db):
    # 400 demo users with 90 days of history: daily, regular, casual and churning archetypes (what
    # `seed_demo` creates, in this test's transaction; it also assesses everyone once).
    demo_users_create(numbers=list(range(1, 401)), days=90, seed=7)


def test_the_model_beats_the_old_heuristic_on_a_held_out_cutoff(demo_history):
    result = churn_backtest()

    assert result.users >= 350
    assert 0.1 < result.churn_rate < 0.6
    # The model never saw the outcomes after this cutoff (trained on cutoffs whose horizon ended before).
    assert result.model["auc"] >= 0.85
    assert result.model["auc"] > result.heuristic["auc"] + 0.03
    assert result.model["brier"] < result.heuristic["brier"]
    assert result.model["highBandLift"] > 1.5
    assert result.model["recentlyActive"]["auc"] > result.heuristic["recentlyActive"]["auc"]


def test_training_stores_a_versioned_fitted_model_with_its_backtest(demo_history):
    first = ChurnModel.objects.get(is_active=True)  # seed_demo assessed everyone once

    second = churn_model_train()

    first.refresh_from_db()
    assert (second.version, second.kind, second.is_active, first.is_active) == (
        first.version + 1,
        "fitted",
        True,
        False,
    )
    assert second.training_rows > 1000
    assert len(second.training_cutoffs) >= 3
    assert second.features[0] == "recency_ratio"
    assert second.quality["backtest"]["model"]["auc"] >= 0.85
    assert second.estimator  # the fitted pipeline, loadable for scoring
    assert churn_scores_compute(user_ids=["demo_000001"], model=second)[0].factors["model"] == "fitted"


def test_assessment_stores_score_band_factors_and_one_history_row_per_week(demo_history):
    now = timezone.now()

    churn_assess_users(now=now)
    churn_assess_users(now=now + dt.timedelta(hours=1))  # same week: the row is updated, not added

    profile = CrmUserProfile.objects.get(user_id="demo_000001")
    assert 0 <= profile.churn_risk <= 1
    assert profile.churn_band == churn_band_for(float(profile.churn_risk))
    drivers = profile.churn_factors["drivers"]
    assert len(drivers) == 3
    assert {d["effect"] for d in drivers} <= {"raises risk", "lowers risk"}
    assert all(d["label"] for d in drivers)
    assert abs(drivers[0]["contribution"]) >= abs(drivers[-1]["contribution"])
    history = ChurnScoreWeekly.objects.filter(user_id="demo_000001")
    assert history.count() == 1
    assert history.get().week == churn_week_of(now) == now.date() - dt.timedelta(days=now.date().weekday())
    assert history.get().churn_band == profile.churn_band
    assert ChurnScoreWeekly.objects.count() == CrmUserProfile.objects.count()


def test_assessment_statements_do_not_grow_with_the_number_of_users(demo_history):
    churn_assess_users()  # the model exists: what is counted below is scoring and writing

    with CaptureQueriesContext(connection) as few:
        churn_assess_users(user_ids=[f"demo_{n:06d}" for n in range(1, 11)])
    with CaptureQueriesContext(connection) as many:
        churn_assess_users(user_ids=[f"demo_{n:06d}" for n in range(1, 401)])

    def statements(captured) -> list[str]:
        # SAVEPOINTs come from this test's transaction (BEGIN/COMMIT outside tests).
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    # active model, features, then per batch of 2000 users: profile locks, scores, history, audit
    assert len(statements(few)) == len(statements(many)) <= 6


def test_churn_backtest_command_reports_model_heuristic_and_rule(demo_history, capsys):
    call_command("churn_backtest")

    out = capsys.readouterr().out
    assert "horizon 14 days" in out
    for name in ("model", "heuristic", "fallback_rule"):
        assert f"  {name}" in out
    assert "'auc'" in out


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_scores_stream_from_a_reader_of_their_own_and_commit_per_batch(monkeypatch):
    import coaching.queries

    monkeypatch.setattr(coaching.queries, "STREAM_CHUNK", 2)  # 5 users: batches of 2, 2, 1
    for n in range(5):
        _logs(ProfileFactory(user_id=f"stream_{n}"), [n + 1, n + 8])
    batches = []

    assessed = churn_assess_users(progress=batches.append)

    assert (assessed, batches) == (5, [2, 2, 1])
    assert CrmUserProfile.objects.filter(churn_assessed_at__isnull=False).count() == 5
    assert ChurnScoreWeekly.objects.count() == 5
