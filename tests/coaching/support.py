"""Data builders for the coach tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from activities.models import ActivityType, UserActivity
from tests.factories import FoodLogFactory

ASK = "/api/crm/users/{}/ask"
SEED_QUESTION = "I've been struggling to eat enough protein. Help me set a goal."


def at_noon(days_ago: int) -> dt.datetime:
    """Noon of that day; for today a moment ago (noon may still be in the future)."""
    if days_ago == 0:
        return timezone.now() - dt.timedelta(seconds=1)
    day = timezone.localdate() - dt.timedelta(days=days_ago)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12, 0)))


def seed_food_week(profile, *, protein_per_day: float = 80, calories_per_day: float = 2000, days: int = 7) -> None:
    """Two meals a day for `days` days (today included) adding up to the given daily totals."""
    for n in range(days):
        for meal, share in (("lunch", 0.5), ("dinner", 0.5)):
            FoodLogFactory(
                user=profile,
                occurred_at=at_noon(n),
                payload={"food_name": f"{meal} plate", "meal_type": meal},
                calories_kcal=Decimal(str(calories_per_day * share)),
                protein_g=Decimal(str(protein_per_day * share)),
                carbs_g=Decimal("100"),
                fat_g=Decimal("30"),
            )


def log(profile, activity_type: str, days_ago: int, payload: dict | None = None, **columns) -> UserActivity:
    occurred = at_noon(days_ago)
    return UserActivity.objects.create(
        user=profile,
        activity_type=activity_type,
        occurred_at=occurred,
        logged_date=timezone.localdate(occurred),
        payload=payload or {},
        **columns,
    )


def seed_habits(profile) -> None:
    """Water on 5 days (1500 ml), sleep on 4 nights (6.5 h), exercise on 3 days (30 min), weigh-ins."""
    for n in range(5):
        log(profile, ActivityType.WATER_LOG, n, water_ml=1500)
    for n in range(4):
        log(profile, ActivityType.SLEEP_LOG, n, sleep_hours=Decimal("6.5"))
    for n in range(3):
        log(profile, ActivityType.EXERCISE, n, {"exercise_type": "running"}, exercise_minutes=30, steps=6000)
    log(profile, ActivityType.WEIGHT_LOG, 20, weight_kg=Decimal("82.0"))
    log(profile, ActivityType.WEIGHT_LOG, 1, weight_kg=Decimal("80.5"))
