import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from activities.models import ActivityType, UserActivity
from coaching.models import AiInsight
from goals.models import HealthGoal
from profiles.models import CrmUserProfile


def _counts() -> tuple[int, int, int, int]:
    return (
        CrmUserProfile.objects.count(),
        UserActivity.objects.count(),
        HealthGoal.objects.count(),
        AiInsight.objects.count(),
    )


@pytest.mark.django_db(transaction=True)
def test_seed_demo_creates_varied_realistic_data_and_is_idempotent():
    # when
    call_command("seed_demo", "--users", "40", "--no-progress")
    first = _counts()
    call_command("seed_demo", "--users", "40", "--no-progress")
    # then a second run changes nothing
    assert _counts() == first
    assert first[0] == 40
    # every user has a history, none of it in the future
    assert UserActivity.objects.values("user_id").distinct().count() == 40
    assert not UserActivity.objects.filter(occurred_at__gt=timezone.now()).exists()
    assert not CrmUserProfile.objects.filter(last_active_at=None).exists()
    assert first[1] > 40 * 20  # dozens of logs per user on average
    # 60+ days of history of every kind
    oldest = UserActivity.objects.order_by("logged_date").first().logged_date
    assert (timezone.localdate() - oldest).days >= 59
    kinds = set(UserActivity.objects.values_list("activity_type", flat=True).distinct())
    assert {ActivityType.FOOD_LOG, ActivityType.WATER_LOG, ActivityType.WEIGHT_LOG, ActivityType.EXERCISE} <= kinds
    food = UserActivity.objects.filter(activity_type=ActivityType.FOOD_LOG).first()
    assert food.calories_kcal > 0
    assert food.protein_g > 0
    assert food.payload["food_name"]
    # varied engagement: several tiers, some churning users with a high risk, some recent actives
    assert CrmUserProfile.objects.values("engagement_tier").distinct().count() >= 2
    assert CrmUserProfile.objects.filter(churn_risk__gte=0.6).exists()
    assert CrmUserProfile.objects.filter(churn_risk__lte=0.4).exists()
    assert CrmUserProfile.objects.filter(last_active_at__gte=timezone.now() - dt.timedelta(days=2)).exists()
    assert CrmUserProfile.objects.filter(last_active_at__lte=timezone.now() - dt.timedelta(days=8)).exists()
    assert CrmUserProfile.objects.exclude(churn_assessed_at=None).count() == 40


@pytest.mark.django_db(transaction=True)
def test_seed_demo_tops_up_to_the_requested_number():
    call_command("seed_demo", "--users", "10", "--no-progress")
    call_command("seed_demo", "--users", "15", "--no-progress")
    assert CrmUserProfile.objects.filter(user_id__startswith="demo_").count() == 15
    assert UserActivity.objects.values("user_id").distinct().count() <= 15


@pytest.mark.django_db
def test_seed_demo_rejects_bad_arguments():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--days"):
        call_command("seed_demo", "--users", "5", "--days", "10", "--no-progress")
    with pytest.raises(CommandError, match="--users"):
        call_command("seed_demo", "--users", "0", "--no-progress")
