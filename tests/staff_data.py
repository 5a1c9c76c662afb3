"""History the staff pages draw that demo data do not have yet: weekly churn scores of past weeks and
retention actions with outcomes. Used by the staff browser test (screenshots) and bench/admin_pages.py.

The demo seed scores every user once (this week); the weekly job adds one row per user and week from
then on. Here the past weeks are filled with a plausible walk ending at each user's current score.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from coaching.models import ChurnScoreWeekly, RetentionAction, RetentionActionType
from profiles.models import CrmUserProfile, churn_band_for

# Share of treated users who come back within 14 days, per action type (made up, for pictures).
RETURN_RATES = {
    RetentionActionType.STREAK_RESTART: 0.46,
    RetentionActionType.EASIER_GOAL: 0.41,
    RetentionActionType.REMINDER: 0.30,
    RetentionActionType.STAFF_CALL: 0.58,
}


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def churn_history_seed(*, weeks: int = 12, seed: int = 3) -> int:
    """For every profile, one ChurnScoreWeekly row per past week (weeks-1 of them, this week excluded),
    risk drifting towards today's; the high band grows over the weeks. Returns the rows written."""
    rng = random.Random(seed)
    this_week = _monday(timezone.localdate())
    rows = []
    for user_id, risk, tier, stage in CrmUserProfile.objects.values_list(
        "user_id", "churn_risk", "engagement_tier", "lifecycle_stage"
    ).iterator(chunk_size=2000):
        current = float(risk)
        for weeks_ago in range(1, weeks):
            value = min(max(current - 0.018 * weeks_ago + rng.gauss(0, 0.06), 0.0), 1.0)
            rows.append(
                ChurnScoreWeekly(
                    user_id=user_id,
                    week=this_week - dt.timedelta(weeks=weeks_ago),
                    churn_risk=Decimal(f"{value:.3f}"),
                    churn_band=churn_band_for(value),
                    engagement_tier=tier,
                    lifecycle_stage=stage,
                )
            )
    ChurnScoreWeekly.objects.bulk_create(rows, batch_size=5000, ignore_conflicts=True)
    with connection.cursor() as cursor:
        # Scored on the Sunday job of each week (created_at is auto_now_add).
        cursor.execute(
            "UPDATE crm_churn_history SET created_at = week + interval '6 days 8 hours' WHERE week < %s",
            [this_week],
        )
    return len(rows)


def retention_actions_seed(*, share: float = 0.15, seed: int = 5) -> int:
    """Retention actions 3 to 8 weeks ago for a share of the users scored medium or high then, with
    outcomes decided (RETURN_RATES). Returns the actions written."""
    rng = random.Random(seed)
    now = timezone.now()
    this_week = _monday(timezone.localdate())
    scores = ChurnScoreWeekly.objects.filter(
        week__gte=this_week - dt.timedelta(weeks=8),
        week__lte=this_week - dt.timedelta(weeks=3),
        churn_band__in=["medium", "high"],
    ).values_list("user_id", "week", "churn_risk", "churn_band")
    actions, treated = [], set()
    for user_id, week, risk, band in scores.iterator(chunk_size=2000):
        if user_id in treated or rng.random() > share:
            continue
        treated.add(user_id)
        action_type = rng.choice(list(RETURN_RATES))
        created = timezone.make_aware(dt.datetime.combine(week + dt.timedelta(days=6), dt.time(9)))
        returned = rng.random() < RETURN_RATES[action_type]
        actions.append(
            RetentionAction(
                user_id=user_id,
                action_type=action_type,
                source="job",
                actor_id="weekly_churn_assessment",
                churn_risk=risk,
                churn_band=band,
                created_at=created,
                outcome_due_at=created + dt.timedelta(days=14),
                returned=returned if created + dt.timedelta(days=14) <= now else None,
                returned_at=created + dt.timedelta(days=rng.randint(1, 13)) if returned else None,
            )
        )
    RetentionAction.objects.bulk_create(actions, batch_size=2000)
    return len(actions)
