"""Churn risk from a model fitted to this deployment's own history (docs/retention.md "Churn model").

Label: no activity in the `horizon` days after a cutoff. Features: each user's history up to the
cutoff, judged against their own rhythm (days since the last log divided by their usual gap between
logging days), frequency, trend, tenure, goals, coach use, tier. A scikit-learn pipeline (standard
scaling + logistic regression: calibrated probabilities and per-feature contributions staff can
read) is trained on weekly past cutoffs and scores every user now. Too little history (a new
deployment) falls back to a documented rule and says so.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass

import joblib
import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from activities.selectors import EngagementSignals
from coaching.engagement import engagement_tier_for
from coaching.models import ChurnModel, ChurnModelKind
from coaching.queries import HISTORY_DAYS, ActivityHistory, activity_histories_get, activity_histories_stream
from profiles.models import CHURN_BAND_HIGH_FROM, tier_rank

TRAINING_CUTOFFS = 8  # weekly cutoffs the model learns from
MIN_TRAINING_ROWS = 200
MIN_ROWS_PER_CLASS = 20
DEFAULT_GAP_DAYS = 7.0  # a user with fewer than two logging days: assume a weekly rhythm
MODEL_MAX_AGE = dt.timedelta(days=6)  # the weekly job retrains when the active model is older

# (feature, what staff read): the estimator's input order.
FEATURES: tuple[tuple[str, str], ...] = (
    ("recency_ratio", "time since the last log, measured in the user's own usual gaps between logs"),
    ("active_days_28", "logging days in the last 4 weeks"),
    ("trend", "logging days in the last 4 weeks against the 4 weeks before"),
    ("tenure", "time since the first log"),
    ("goal_progress", "progress on active goals"),
    ("active_goals", "active goals"),
    ("coach_sessions_28", "coach conversations in the last 4 weeks"),
    ("tier", "engagement tier"),
)
FEATURE_NAMES = [name for name, _ in FEATURES]
_LOGGED = {"recency_ratio", "tenure", "coach_sessions_28"}  # shown to staff in their own units
FEATURE_LABELS = dict(FEATURES)


def horizon_days() -> int:
    return settings.CHURN_HORIZON_DAYS


def _local_day(moment: dt.datetime) -> dt.date:
    return timezone.localdate(moment)


def _usual_gap(history: ActivityHistory) -> float:
    if history.active_days < 2 or history.first_day is None or history.last_day is None:
        return DEFAULT_GAP_DAYS
    return max((history.last_day - history.first_day).days / (history.active_days - 1), 1.0)


def _days_since_last(history: ActivityHistory, cutoff_date: dt.date) -> float:
    if history.last_day is None:
        return float(HISTORY_DAYS)
    return float(max((cutoff_date - history.last_day).days, 0))


def _signals(history: ActivityHistory) -> EngagementSignals:
    return EngagementSignals(
        activities_7d=history.logs_7,
        activities_prev_7d=history.logs_prev_7,
        activities_30d=history.logs_30,
        active_days_14d=history.active_days_14,
        last_activity_at=None,
    )


def feature_row(history: ActivityHistory, cutoff_date: dt.date) -> list[float]:
    """The model's input for one user at a cutoff (no fixed day thresholds: rhythm-relative)."""
    days_since = _days_since_last(history, cutoff_date)
    tenure_days = (cutoff_date - history.first_day).days if history.first_day else history.profile_age_days
    return [
        math.log1p(days_since / _usual_gap(history)),  # log: 2 gaps vs 1 matters more than 22 vs 21
        float(history.active_days_28),
        (history.active_days_28 - history.active_days_prev_28) / max(history.active_days_prev_28, 1),
        math.log1p(max(tenure_days, 0)),
        history.goal_progress / 100,
        float(history.active_goals),
        math.log1p(history.coach_sessions_28),
        float(tier_rank(engagement_tier_for(_signals(history)))),
    ]


def fallback_risk(history: ActivityHistory, cutoff_date: dt.date) -> float:
    """The rule used until there is history to learn from: r / (r + 2), r = days since the last log
    in units of the user's usual gap (a weekly rhythm when unknown). One usual gap: 0.33; three: 0.6;
    six: 0.75 (high)."""
    ratio = _days_since_last(history, cutoff_date) / _usual_gap(history)
    return ratio / (ratio + 2)


def heuristic_risk(history: ActivityHistory, cutoff_date: dt.date) -> float:
    """The hand-weighted score used before the model (fixed 30-day windows), kept as the backtest's
    baseline: 0.45 inactivity (days / 30), 0.25 low volume (30-day logs / 60), 0.15 declining week,
    0.15 irregular (active days of 14)."""
    days_since = min(_days_since_last(history, cutoff_date), 30.0)
    inactivity = days_since / 30
    low_volume = 1 - min(history.logs_30 / 60, 1)
    if history.logs_prev_7:
        declining = max(0.0, 1 - history.logs_7 / history.logs_prev_7)
    else:
        declining = 0.0 if history.logs_7 else 1.0
    irregular = 1 - history.active_days_14 / 14
    return 0.45 * inactivity + 0.25 * low_volume + 0.15 * declining + 0.15 * irregular


@dataclass(frozen=True)
class TrainingSet:
    features: np.ndarray
    churned: np.ndarray
    cutoffs: list[str]


def _cutoff_at(day: dt.date) -> dt.datetime:
    """The start of `day` in CRM_TIME_ZONE: everything logged before that day is history."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _labelled_histories(cutoff_date: dt.date, memo: dict | None) -> list[ActivityHistory]:
    """Users with history at `cutoff_date` and their outcome (users with none teach nothing)."""
    if memo is not None and cutoff_date in memo:
        return memo[cutoff_date]
    histories = [
        h
        for h in activity_histories_get(
            cutoff=_cutoff_at(cutoff_date), cutoff_date=cutoff_date, horizon_days=horizon_days()
        )
        if h.last_day is not None
    ]
    if memo is not None:
        memo[cutoff_date] = histories
    return histories


def training_set_build(
    *, last_cutoff_date: dt.date, cutoffs: int = TRAINING_CUTOFFS, memo: dict | None = None
) -> TrainingSet:
    """Labelled rows of weekly cutoffs ending at `last_cutoff_date` (one SQL statement per cutoff;
    `memo` shares a cutoff's rows between the training and its backtest)."""
    rows, labels, used = [], [], []
    for weeks_back in range(cutoffs):
        cutoff_date = last_cutoff_date - dt.timedelta(weeks=weeks_back)
        histories = _labelled_histories(cutoff_date, memo)
        if not histories:
            continue
        used.append(cutoff_date.isoformat())
        rows.extend(feature_row(h, cutoff_date) for h in histories)
        labels.extend(h.churned for h in histories)
    return TrainingSet(np.array(rows, dtype=float).reshape(-1, len(FEATURES)), np.array(labels, dtype=bool), used)


def _enough(training: TrainingSet) -> bool:
    positives = int(training.churned.sum())
    return (
        len(training.churned) >= MIN_TRAINING_ROWS
        and positives >= MIN_ROWS_PER_CLASS
        and len(training.churned) - positives >= MIN_ROWS_PER_CLASS
    )


def estimator_fit(training: TrainingSet) -> Pipeline:
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))])
    pipeline.fit(training.features, training.churned)
    return pipeline


@dataclass(frozen=True)
class BacktestResult:
    cutoff: str
    users: int
    churn_rate: float
    model: dict  # auc, brier, high_band_lift, high_band_users
    heuristic: dict
    fallback_rule: dict


def _quality(churned: np.ndarray, risk: np.ndarray) -> dict:
    base = float(churned.mean()) if len(churned) else 0.0
    high = risk >= CHURN_BAND_HIGH_FROM
    high_rate = float(churned[high].mean()) if high.any() else None
    return {
        "auc": round(float(roc_auc_score(churned, risk)), 3) if 0 < churned.sum() < len(churned) else None,
        "brier": round(float(brier_score_loss(churned, np.clip(risk, 0, 1))), 3),
        "highBandUsers": int(high.sum()),
        "highBandLift": round(high_rate / base, 2) if high_rate is not None and base else None,
    }


def churn_backtest(*, cutoff_date: dt.date | None = None, memo: dict | None = None) -> BacktestResult | None:
    """Train on the weekly cutoffs whose horizon ended by `cutoff_date`, predict the `horizon` days
    after it, and score model, old heuristic and fallback rule on the same users. None: no history."""
    horizon = horizon_days()
    cutoff_date = cutoff_date or _local_day(timezone.now()) - dt.timedelta(days=horizon)
    memo = {} if memo is None else memo
    training = training_set_build(last_cutoff_date=cutoff_date - dt.timedelta(days=horizon), memo=memo)
    histories = _labelled_histories(cutoff_date, memo)
    if not histories:
        return None
    churned = np.array([h.churned for h in histories], dtype=bool)
    features = np.array([feature_row(h, cutoff_date) for h in histories], dtype=float)
    # The hard cases: users who logged in the 4 weeks before the cutoff (long-gone users are easy).
    recent = np.array([h.active_days_28 > 0 for h in histories], dtype=bool)

    def scored(risk: np.ndarray) -> dict:
        return {**_quality(churned, risk), "recentlyActive": _quality(churned[recent], risk[recent])}

    model_quality = None
    if _enough(training):
        model_quality = scored(estimator_fit(training).predict_proba(features)[:, 1])
    return BacktestResult(
        cutoff=cutoff_date.isoformat(),
        users=len(histories),
        churn_rate=round(float(churned.mean()), 3),
        model=model_quality or {"note": "too little history before the cutoff to fit a model"},
        heuristic=scored(np.array([heuristic_risk(h, cutoff_date) for h in histories])),
        fallback_rule=scored(np.array([fallback_risk(h, cutoff_date) for h in histories])),
    )


def churn_model_train(*, now: dt.datetime | None = None) -> ChurnModel:
    """Fit a new model version on this deployment's history (or record the fallback rule), with its
    backtest, and make it the active one."""
    now = now or timezone.now()
    horizon = horizon_days()
    last_labelled = _local_day(now) - dt.timedelta(days=horizon)
    memo: dict = {}  # the weekly cutoffs the training and its backtest share are read once
    training = training_set_build(last_cutoff_date=last_labelled, memo=memo)
    backtest = churn_backtest(cutoff_date=last_labelled, memo=memo)
    quality = {"backtest": backtest.__dict__ if backtest else None}
    estimator_blob = None
    kind = ChurnModelKind.FALLBACK_RULE
    notes = (
        f"Too little history to fit a model ({len(training.churned)} labelled rows; needs "
        f"{MIN_TRAINING_ROWS} with {MIN_ROWS_PER_CLASS} of each outcome): the fallback rule scores."
    )
    if _enough(training):
        buffer = io.BytesIO()
        joblib.dump(estimator_fit(training), buffer)
        estimator_blob, kind, notes = buffer.getvalue(), ChurnModelKind.FITTED, ""
    with transaction.atomic():
        latest = ChurnModel.objects.select_for_update().order_by("-version").first()
        ChurnModel.objects.filter(is_active=True).update(is_active=False)
        return ChurnModel.objects.create(
            version=(latest.version + 1) if latest else 1,
            kind=kind,
            trained_at=now,
            horizon_days=horizon,
            training_rows=len(training.churned),
            training_cutoffs=training.cutoffs,
            features=FEATURE_NAMES,
            quality=quality,
            estimator=estimator_blob,
            is_active=True,
            notes=notes,
        )


def churn_model_active() -> ChurnModel | None:
    return ChurnModel.objects.filter(is_active=True).first()


def churn_model_ensure(*, now: dt.datetime | None = None) -> ChurnModel:
    """The active model, retrained when missing or older than MODEL_MAX_AGE (the weekly refresh)."""
    now = now or timezone.now()
    model = churn_model_active()
    if model is None or model.trained_at < now - MODEL_MAX_AGE:
        model = churn_model_train(now=now)
    return model


@dataclass(frozen=True)
class ChurnScore:
    user_id: str
    risk: float
    factors: dict


def _estimator(model: ChurnModel | None) -> Pipeline | None:
    if model is None or model.kind != ChurnModelKind.FITTED or not model.estimator:
        return None
    return joblib.load(io.BytesIO(bytes(model.estimator)))


def _drivers(pipeline: Pipeline | None, row: np.ndarray, values: list[float], top: int = 3) -> list[dict]:
    if pipeline is None:
        return [
            {
                "feature": "recency_ratio",
                "label": FEATURE_LABELS["recency_ratio"],
                "value": round(math.expm1(values[0]), 2),
                "contribution": None,
                "effect": "raises risk" if math.expm1(values[0]) > 1 else "lowers risk",
            }
        ]
    scaler, model = pipeline.named_steps["scale"], pipeline.named_steps["model"]
    contributions = model.coef_[0] * (row - scaler.mean_) / scaler.scale_
    order = np.argsort(-np.abs(contributions))[:top]
    return [
        {
            "feature": FEATURE_NAMES[i],
            "label": FEATURE_LABELS[FEATURE_NAMES[i]],
            "value": round(math.expm1(values[i]) if FEATURE_NAMES[i] in _LOGGED else float(values[i]), 2),
            "contribution": round(float(contributions[i]), 3),  # log-odds: + raises the risk
            "effect": "raises risk" if contributions[i] > 0 else "lowers risk",
        }
        for i in order
    ]


def _scores(histories: list[ActivityHistory], *, today: dt.date, model, pipeline) -> list[ChurnScore]:
    values = [feature_row(h, today) for h in histories]
    matrix = np.array(values, dtype=float).reshape(-1, len(FEATURES))
    if pipeline is not None:
        risks = pipeline.predict_proba(matrix)[:, 1]
    else:
        risks = np.array([fallback_risk(h, today) for h in histories])
    return [
        ChurnScore(
            user_id=history.user_id,
            risk=round(float(risks[index]), 3),
            factors={
                "model": model.kind if model else ChurnModelKind.FALLBACK_RULE,
                "modelVersion": model.version if model else None,
                "daysInactive": _days_since_last(history, today),
                "typicalGapDays": round(_usual_gap(history), 1),
                "activities30d": history.logs_30,
                "activeDays28d": history.active_days_28,
                "drivers": _drivers(pipeline, matrix[index], values[index]),
            },
        )
        for index, history in enumerate(histories)
    ]


def churn_scores_iter(
    *, now: dt.datetime | None = None, user_ids: list[str] | None = None, model: ChurnModel | None = None
) -> Iterator[list[ChurnScore]]:
    """Every user's churn probability now (or those of `user_ids`) with its factors, a batch at a time
    (one features statement streamed: memory stays flat whatever the number of users)."""
    now = now or timezone.now()
    model = model if model is not None else churn_model_active()
    pipeline = _estimator(model)
    today = _local_day(now)
    for histories in activity_histories_stream(cutoff=now, cutoff_date=today, user_ids=user_ids):
        yield _scores(histories, today=today, model=model, pipeline=pipeline)


def churn_scores_compute(
    *, now: dt.datetime | None = None, user_ids: list[str] | None = None, model: ChurnModel | None = None
) -> list[ChurnScore]:
    """All of `churn_scores_iter` at once (one user's metrics, the coach's tool, tests)."""
    return [score for batch in churn_scores_iter(now=now, user_ids=user_ids, model=model) for score in batch]
