"""Realistic demo data for `manage.py seed_demo`: profiles across tiers and goals, 60+ days of logs.

Each demo user `demo_000001`... is generated from its own seeded RNG, so the data are the same on
every machine and a second run only adds the users that are missing. Activities are written with
PostgreSQL COPY (10k users, about a million rows, in well under a minute).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from coaching.models import AiInsight, InsightSource, InsightType
from coaching.retention import churn_assess_users
from compliance.services import audit_record
from goals.models import GoalMetric, GoalPriority, GoalSource, GoalStatus, GoalType, HealthGoal
from profiles.models import ActivityLevel, CrmUserProfile, PrimaryGoal
from yahealthy_crm.actors import ActorType

DEMO_PREFIX = "demo_"
ARCHETYPES = (  # (name, share, probability of logging on a given day)
    ("devoted", 0.10, 0.9),
    ("regular", 0.25, 0.6),
    ("casual", 0.35, 0.25),
    ("churning", 0.30, 0.6),  # active at first, then stops 8..45 days ago
)
MEALS = (
    ("Oatmeal with berries", 350, 12, 60, 7),
    ("Greek yogurt and granola", 320, 20, 40, 9),
    ("Scrambled eggs on toast", 420, 24, 30, 22),
    ("Grilled Chicken", 450, 45, 50, 12),
    ("Salmon with rice", 600, 38, 60, 20),
    ("Lentil soup", 380, 18, 55, 8),
    ("Turkey sandwich", 480, 30, 45, 16),
    ("Caesar salad", 390, 15, 20, 27),
    ("Protein shake", 220, 30, 10, 4),
    ("Pasta bolognese", 650, 32, 80, 20),
    ("Tofu stir fry", 430, 22, 45, 18),
    ("Apple and almonds", 250, 6, 25, 14),
)
EXERCISES = (("running", 9.5), ("cycling", 7.5), ("strength training", 6.0), ("yoga", 3.5), ("walking", 4.0))
# Activity history, generated in PostgreSQL from per-user parameters (demo_params). Functions in FROM
# and random() filters reference a column of the day row (`+ 0 * d.day_index`) so they are evaluated
# once per day: a filter on one table alone is pushed down and would be decided once per user.
_INSERT = (
    "INSERT INTO crm_user_activities (user_id, activity_type, external_id, source, occurred_at, logged_date, "
    "payload, calories_kcal, protein_g, carbs_g, fat_g, water_ml, weight_kg, sleep_hours, exercise_minutes, "
    "calories_burned_kcal, steps, source_updated_at, created_at, updated_at) "
    "SELECT user_id, activity_type, external_id, 'app', occurred_at, logged_date, payload, calories_kcal, "
    "protein_g, carbs_g, fat_g, water_ml, weight_kg, sleep_hours, exercise_minutes, calories_burned_kcal, steps, "
    "occurred_at, occurred_at, occurred_at FROM ("
)
_NO_NUMBERS = (
    "NULL::numeric AS calories_kcal, NULL::numeric AS protein_g, NULL::numeric AS carbs_g, NULL::numeric AS fat_g"
)
_NO_OTHER = "NULL::int AS water_ml, NULL::numeric AS weight_kg, NULL::numeric AS sleep_hours"
_NO_EXERCISE = "NULL::int AS exercise_minutes, NULL::numeric AS calories_burned_kcal, NULL::int AS steps"
_AT = "((d.day + make_time({hour}, floor(random() * 60)::int, 0)) AT TIME ZONE 'UTC')"
ACTIVITY_SQL = [
    """CREATE TEMP TABLE demo_days ON COMMIT DROP AS
    SELECT p.user_id, p.start_weight, p.weight_trend, p.protein_factor, g.i AS day_index,
           (%(today)s::date - (%(days)s - 1 - g.i)) AS day
    FROM demo_params p CROSS JOIN generate_series(0, %(days)s - 1) AS g(i)
    WHERE g.i < p.active_days AND random() + 0 * g.i < p.p""",
    _INSERT
    + f"""SELECT d.user_id, 'app_open' AS activity_type, d.user_id || '_open_' || d.day_index AS external_id,
        {_AT.format(hour="6 + floor(random() * 4)::int")} AS occurred_at, d.day AS logged_date,
        '{{}}'::jsonb AS payload, {_NO_NUMBERS}, {_NO_OTHER}, {_NO_EXERCISE} FROM demo_days d WHERE random() < 0.3) x""",
    _INSERT
    + f"""SELECT d.user_id, 'food_log' AS activity_type, d.user_id || '_food_' || d.day_index || '_' || m.i AS external_id,
        {_AT.format(hour="7 + floor(random() * 15)::int")} AS occurred_at, d.day AS logged_date,
        jsonb_build_object('food_name', f.meal->>0, 'calories', round((f.meal->>1)::numeric * f.scale),
                           'protein', round((f.meal->>2)::numeric * f.scale * d.protein_factor, 1),
                           'date', d.day) AS payload,
        round((f.meal->>1)::numeric * f.scale, 1) AS calories_kcal,
        round((f.meal->>2)::numeric * f.scale * d.protein_factor, 1) AS protein_g,
        round((f.meal->>3)::numeric * f.scale, 1) AS carbs_g, round((f.meal->>4)::numeric * f.scale, 1) AS fat_g,
        {_NO_OTHER}, {_NO_EXERCISE}
      FROM demo_days d
      CROSS JOIN LATERAL generate_series(1, 1 + floor(random() * 3)::int + 0 * d.day_index) AS m(i)
      CROSS JOIN LATERAL (SELECT %(meals)s::jsonb -> floor(random() * jsonb_array_length(%(meals)s::jsonb))::int
                                 + 0 * m.i AS meal, (0.8 + random() * 0.45)::numeric + 0 * m.i AS scale) f) x""",
    _INSERT
    + f"""SELECT d.user_id, 'water_log' AS activity_type, d.user_id || '_water_' || d.day_index || '_' || w.i AS external_id,
        {_AT.format(hour="8 + floor(random() * 14)::int")} AS occurred_at, d.day AS logged_date,
        jsonb_build_object('amount_ml', w.ml) AS payload, {_NO_NUMBERS},
        w.ml AS water_ml, NULL::numeric AS weight_kg, NULL::numeric AS sleep_hours, {_NO_EXERCISE}
      FROM demo_days d
      CROSS JOIN LATERAL (SELECT i, (ARRAY[250, 330, 500, 750])[1 + floor(random() * 4)::int + 0 * i] AS ml
                          FROM generate_series(1, floor(random() * 2)::int + 0 * d.day_index) AS i) w) x""",
    _INSERT
    + f"""SELECT d.user_id, 'weight_log' AS activity_type, d.user_id || '_weight_' || d.day_index AS external_id,
        {_AT.format(hour="7")} AS occurred_at, d.day AS logged_date,
        jsonb_build_object('weight_kg', d.kg) AS payload, {_NO_NUMBERS},
        NULL::int AS water_ml, d.kg AS weight_kg, NULL::numeric AS sleep_hours, {_NO_EXERCISE}
      FROM (SELECT *, round(greatest(40, start_weight + weight_trend * day_index + (random() - 0.5) * 0.5)::numeric, 1)
                AS kg FROM demo_days WHERE random() < 0.2) d) x""",
    _INSERT
    + f"""SELECT d.user_id, 'exercise' AS activity_type, d.user_id || '_exercise_' || d.day_index AS external_id,
        {_AT.format(hour="6 + floor(random() * 15)::int")} AS occurred_at, d.day AS logged_date,
        jsonb_build_object('exercise_type', e.ex->>0, 'duration_minutes', e.minutes) AS payload, {_NO_NUMBERS},
        {_NO_OTHER}, e.minutes AS exercise_minutes,
        round(e.minutes * (e.ex->>1)::numeric, 1) AS calories_burned_kcal,
        CASE WHEN e.ex->>0 IN ('running', 'walking') THEN e.minutes * 120 END AS steps
      FROM demo_days d
      CROSS JOIN LATERAL (SELECT %(exercises)s::jsonb -> floor(random() * jsonb_array_length(%(exercises)s::jsonb))::int
                                 + 0 * d.day_index AS ex, 15 + floor(random() * 61)::int + 0 * d.day_index AS minutes) e
      WHERE random() + 0 * d.day_index < 0.3) x""",
    _INSERT
    + f"""SELECT d.user_id, 'sleep_log' AS activity_type, d.user_id || '_sleep_' || d.day_index AS external_id,
        {_AT.format(hour="7")} AS occurred_at, d.day AS logged_date,
        jsonb_build_object('duration_hours', d.hours) AS payload, {_NO_NUMBERS},
        NULL::int AS water_ml, NULL::numeric AS weight_kg, d.hours AS sleep_hours, {_NO_EXERCISE}
      FROM (SELECT *, round((5 + random() * 4)::numeric, 2) AS hours FROM demo_days WHERE random() < 0.35) d) x""",
    _INSERT
    + f"""SELECT d.user_id, 'milestone' AS activity_type, d.user_id || '_milestone_' || d.day_index AS external_id,
        {_AT.format(hour="20")} AS occurred_at, d.day AS logged_date,
        jsonb_build_object('milestone', d.day_index || ' days with YAHealthy') AS payload, {_NO_NUMBERS},
        {_NO_OTHER}, {_NO_EXERCISE}
      FROM demo_days d WHERE d.day_index > 0 AND d.day_index %% 30 = 0) x""",
]
# Last activity and latest weigh-in become the profile's last_active_at and current weight.
PROFILE_FROM_ACTIVITY_SQL = """
UPDATE crm_user_profiles p
SET last_active_at = a.last_active_at, current_weight_kg = coalesce(w.weight_kg, p.current_weight_kg)
FROM (SELECT user_id, max(occurred_at) AS last_active_at FROM crm_user_activities
      WHERE user_id IN (SELECT user_id FROM demo_params) GROUP BY user_id) a
LEFT JOIN (SELECT DISTINCT ON (user_id) user_id, weight_kg FROM crm_user_activities
           WHERE user_id IN (SELECT user_id FROM demo_params) AND activity_type = 'weight_log'
           ORDER BY user_id, occurred_at DESC) w ON w.user_id = a.user_id
WHERE p.user_id = a.user_id
"""


@dataclass
class DemoUser:
    profile: CrmUserProfile
    # Parameters of the activity history, which PostgreSQL generates (see ACTIVITY_SQL).
    daily_probability: float
    active_days: int
    start_weight: float
    weight_trend: float
    protein_factor: float
    goals: list[HealthGoal] = field(default_factory=list)
    insights: list[AiInsight] = field(default_factory=list)


def demo_user_id(number: int) -> str:
    return f"{DEMO_PREFIX}{number:06d}"


def _pick_archetype(rng: random.Random) -> tuple[str, float]:
    roll, cumulative = rng.random(), 0.0
    for name, share, daily_probability in ARCHETYPES:
        cumulative += share
        if roll <= cumulative:
            return name, daily_probability
    return ARCHETYPES[-1][0], ARCHETYPES[-1][2]


def build_demo_user(number: int, *, days: int, seed: int) -> DemoUser:
    rng = random.Random(seed * 1_000_003 + number)
    archetype, daily_probability = _pick_archetype(rng)
    primary_goal = rng.choice(PrimaryGoal.values)
    weight = round(rng.uniform(52, 118), 1)
    now = timezone.now()
    profile = CrmUserProfile(
        user_id=demo_user_id(number),
        age=rng.randint(18, 72),
        height_cm=Decimal(str(round(rng.uniform(152, 198), 1))),
        current_weight_kg=Decimal(str(weight)),
        activity_level=rng.choice(ActivityLevel.values),
        primary_goal=primary_goal,
        consent_ai_processing=rng.random() > 0.05,
        consent_ai_processing_at=now,
        consent_marketing=rng.random() < 0.4,
        consent_marketing_at=now,
    )
    user = DemoUser(
        profile=profile,
        daily_probability=daily_probability,
        # Churning users were active at first and stopped 8..45 days ago.
        active_days=days - rng.randint(8, 45) if archetype == "churning" else days,
        start_weight=weight,
        weight_trend={"weight_loss": -0.06, "muscle_gain": 0.03, "general_health": 0.0}[primary_goal],
        protein_factor=round(rng.uniform(0.6, 1.6), 2),
    )
    user.goals = _demo_goals(rng, profile, timezone.localdate())
    if rng.random() < 0.6:
        user.insights.append(
            AiInsight(
                user_id=profile.user_id,
                insight_type=InsightType.NUTRITION,
                title="Protein at breakfast helps",
                body="Your breakfasts are light on protein; adding eggs or yogurt keeps you full longer.",
                recommendation="Add 20 g of protein to breakfast this week.",
                source=InsightSource.DAILY_JOB,
            )
        )
    return user


def _demo_goals(rng: random.Random, profile: CrmUserProfile, today: dt.date) -> list[HealthGoal]:
    weight = float(profile.current_weight_kg)
    candidates = [
        (GoalType.NUTRITION, GoalMetric.PROTEIN_G, round(weight * 1.6 / 5) * 5, "g"),
        (GoalType.NUTRITION, GoalMetric.CALORIES_KCAL, rng.choice((1800, 2000, 2200, 2500)), "kcal"),
        (GoalType.WATER, GoalMetric.WATER_ML, 2000, "ml"),
        (GoalType.SLEEP, GoalMetric.SLEEP_HOURS, 8, "hours"),
        (GoalType.ACTIVITY, GoalMetric.EXERCISE_MINUTES, 30, "min"),
    ]
    if profile.primary_goal == PrimaryGoal.WEIGHT_LOSS:
        candidates.insert(0, (GoalType.WEIGHT, GoalMetric.WEIGHT_KG, round(weight * 0.9), "kg"))
    elif profile.primary_goal == PrimaryGoal.MUSCLE_GAIN:
        candidates.insert(0, (GoalType.WEIGHT, GoalMetric.WEIGHT_KG, round(weight * 1.05), "kg"))
    goals = []
    for goal_type, metric, value, unit in rng.sample(candidates, rng.randint(1, 3)):
        status = rng.choices(GoalStatus.values, weights=(1, 6, 2, 1))[0]
        goals.append(
            HealthGoal(
                user_id=profile.user_id,
                goal_type=goal_type,
                metric=metric,
                goal_value=Decimal(str(value)),
                goal_unit=unit,
                start_value=Decimal(str(weight)) if metric == GoalMetric.WEIGHT_KG else None,
                target_date=today + dt.timedelta(days=rng.randint(20, 120)),
                priority=rng.choice(GoalPriority.values),
                status=status,
                progress_pct=Decimal(100 if status == GoalStatus.COMPLETED else rng.randint(0, 95)),
                streak_days=rng.randint(0, 21) if status == GoalStatus.ACTIVE else 0,
                source=GoalSource.AI_ASSISTANT if status == GoalStatus.SUGGESTED else GoalSource.APP,
                rationale="Suggested from your 7-day averages." if status == GoalStatus.SUGGESTED else "",
            )
        )
    return goals


def _generate_activities(users: list[DemoUser], *, days: int, today: dt.date, seed: int) -> int:
    """Generate every activity row of these users inside PostgreSQL (fast for millions of rows)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE demo_params (user_id varchar(64), p float8, active_days int, "
            "start_weight numeric, weight_trend numeric, protein_factor numeric) ON COMMIT DROP"
        )
        with cursor.cursor.copy("COPY demo_params FROM STDIN") as copy:
            for u in users:
                copy.write_row(
                    (
                        u.profile.user_id,
                        u.daily_probability,
                        u.active_days,
                        u.start_weight,
                        u.weight_trend,
                        u.protein_factor,
                    )
                )
        cursor.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        params = {
            "days": days,
            "today": today,
            "meals": json.dumps(MEALS),
            "exercises": json.dumps(EXERCISES),
        }
        created = 0
        for statement in ACTIVITY_SQL:
            if statement.startswith("INSERT"):
                statement += " WHERE x.occurred_at <= now()"  # today's later meals have not happened yet
            cursor.execute(statement, params)
            created += max(cursor.rowcount, 0) if statement.startswith("INSERT") else 0
        cursor.execute(PROFILE_FROM_ACTIVITY_SQL)
    return created


def missing_demo_numbers(total: int) -> list[int]:
    existing = set(CrmUserProfile.objects.filter(user_id__startswith=DEMO_PREFIX).values_list("user_id", flat=True))
    return [n for n in range(1, total + 1) if demo_user_id(n) not in existing]


def demo_users_create(*, numbers: list[int], days: int, seed: int, today: dt.date | None = None) -> dict:
    """Create the given demo users with their history in one transaction; returns row counts."""
    today = today or timezone.localdate()
    users = [build_demo_user(n, days=days, seed=seed) for n in numbers]
    with transaction.atomic():
        CrmUserProfile.objects.bulk_create([u.profile for u in users], batch_size=1000)
        activities = _generate_activities(users, days=days, today=today, seed=seed)
        HealthGoal.objects.bulk_create([g for u in users for g in u.goals], batch_size=1000)
        AiInsight.objects.bulk_create([i for u in users for i in u.insights], batch_size=1000)
    user_ids = [u.profile.user_id for u in users]
    with connection.cursor() as cursor:
        # Fresh planner statistics after the bulk load: the churn scoring below reads every user's
        # history at once, and autovacuum may not have analysed the new rows yet.
        cursor.execute("ANALYZE crm_user_profiles, crm_user_activities, crm_health_goals")
    churn_assess_users(user_ids=user_ids, refresh_tiers=True)
    return {
        "users": len(users),
        "activities": activities,
        "goals": sum(len(u.goals) for u in users),
        "insights": sum(len(u.insights) for u in users),
    }


def demo_seed_record(counts: dict) -> None:
    audit_record(
        actor_type=ActorType.SYSTEM,
        actor_id="seed_demo",
        action="demo.seeded",
        entity_type="demo",
        changes=counts,
    )
