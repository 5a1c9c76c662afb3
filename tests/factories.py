import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from activities.models import ActivityType, UserActivity
from coaching.models import AiInsight, CoachingConversation, CoachingSession, RetentionAction
from goals.models import GoalMetric, GoalType, HealthGoal
from profiles.models import CrmUserProfile


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CrmUserProfile
        django_get_or_create = ("user_id",)

    user_id = factory.Sequence(lambda n: f"user_{n:05d}")
    age = 30
    height_cm = Decimal("175.0")
    current_weight_kg = Decimal("80.0")
    activity_level = "moderate"
    primary_goal = "general_health"


class GoalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthGoal

    user = factory.SubFactory(ProfileFactory)
    goal_type = GoalType.NUTRITION
    metric = GoalMetric.PROTEIN_G
    goal_value = Decimal("120")
    goal_unit = "g"


class FoodLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserActivity

    user = factory.SubFactory(ProfileFactory)
    activity_type = ActivityType.FOOD_LOG
    external_id = factory.Sequence(lambda n: f"food_{n}")
    occurred_at = factory.LazyFunction(timezone.now)
    logged_date = factory.LazyAttribute(lambda o: timezone.localdate(o.occurred_at))
    payload = factory.LazyAttribute(lambda o: {"food_name": "Grilled Chicken", "calories": float(o.calories_kcal)})
    calories_kcal = Decimal("450")
    protein_g = Decimal("45")
    carbs_g = Decimal("50")
    fat_g = Decimal("12")


class InsightFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AiInsight

    user = factory.SubFactory(ProfileFactory)
    title = "Protein is trending up"
    body = "Your protein average rose this week."


class CoachingConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CoachingConversation

    user = factory.SubFactory(ProfileFactory)
    last_turn_at = factory.LazyFunction(timezone.now)


class CoachingSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CoachingSession

    user = factory.SubFactory(ProfileFactory)
    conversation = factory.SubFactory(CoachingConversationFactory, user=factory.SelfAttribute("..user"))
    message = "How am I doing?"
    response = "You logged food on 5 of the last 7 days."
    provider = "offline"


def days_ago(n: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=n)


class RetentionActionFactory(factory.django.DjangoModelFactory):
    """A retention action taken now by the weekly job for a high-risk user; its outcome due in 14 days."""

    class Meta:
        model = RetentionAction

    user = factory.SubFactory(ProfileFactory)
    action_type = "reminder"
    source = "job"
    churn_risk = Decimal("0.8")
    churn_band = "high"
    created_at = factory.LazyFunction(timezone.now)
    outcome_due_at = factory.LazyAttribute(lambda o: o.created_at + dt.timedelta(days=14))
