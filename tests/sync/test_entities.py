"""Every entity type and operation, validation, ordering, conflicts and side effects (points 3, 5, 6)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from activities.models import UserActivity
from compliance.models import AuditLog
from goals.models import GoalMetric, GoalSource, GoalType, HealthGoal
from profiles.models import CrmUserProfile
from sync.models import SyncEvent, SyncStatus
from tests.factories import GoalFactory, ProfileFactory
from tests.sync.support import event

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
TODAY = timezone.localdate(NOW)


def at(minutes_ago: int = 0, days_ago: int = 0) -> str:
    return (NOW - dt.timedelta(minutes=minutes_ago, days=days_ago)).isoformat()


ACTIVITY_CASES = [
    (
        "food_log",
        {"food_name": "Oats", "calories": 350.5, "protein": 12, "carbs": 60, "fat": 7},
        {"calories_kcal": Decimal("350.5"), "protein_g": Decimal("12"), "fat_g": Decimal("7")},
    ),
    (
        "exercise",
        {"exercise_type": "running", "duration_minutes": 30, "calories_burned": 280, "steps": 4200},
        {"exercise_minutes": 30, "calories_burned_kcal": Decimal("280"), "steps": 4200},
    ),
    ("weight_log", {"weight_kg": 79.4}, {"weight_kg": Decimal("79.4")}),
    ("water_log", {"amount_ml": 500}, {"water_ml": 500}),
    ("sleep_log", {"hours": 7.25, "quality": "good"}, {"sleep_hours": Decimal("7.25")}),
    ("milestone", {"title": "First 5k"}, {}),
    ("app_open", {"platform": "ios"}, {}),
]


@pytest.mark.parametrize(("entity_type", "payload", "columns"), ACTIVITY_CASES)
def test_activity_create_fills_typed_columns(post_event, entity_type, payload, columns):
    response = post_event(event(entity_type, "create", external_id=f"{entity_type}_1", payload=payload))

    assert response.status_code == 202, response.json()
    activity = UserActivity.objects.get()
    assert activity.activity_type == entity_type
    assert activity.source == "app"
    for column, value in columns.items():
        assert getattr(activity, column) == value
    assert SyncEvent.objects.get().status == SyncStatus.SUCCESS
    audit = AuditLog.objects.get(action=f"{entity_type}.create")
    assert audit.actor_type == "app"
    assert audit.user_id == "user_sync"
    assert CrmUserProfile.objects.get(user_id="user_sync").last_active_at is not None


@pytest.mark.parametrize("entity_type", ["food_log", "exercise", "weight_log", "water_log", "sleep_log"])
def test_activity_update_and_delete(post_event, entity_type):
    payload = dict(next(p for t, p, _ in ACTIVITY_CASES if t == entity_type))
    post_event(event(entity_type, "create", external_id="x1", payload=payload, occurredAt=at(10)))

    updated = post_event(event(entity_type, "update", external_id="x1", payload=payload, occurredAt=at(5)))
    deleted = post_event(event(entity_type, "delete", external_id="x1", occurredAt=at(1)))

    assert updated.status_code == deleted.status_code == 202
    assert updated.json()["result"]["data"]["created"] is False
    assert deleted.json()["result"]["data"]["deleted"] is True
    assert UserActivity.objects.count() == 0
    assert SyncEvent.objects.filter(status=SyncStatus.SUCCESS).count() == 3


def test_food_log_update_replaces_the_numbers(post_event):
    post_event(event(payload={"food_name": "Rice", "calories": 300}, occurredAt=at(10)))
    post_event(event(operation="update", payload={"food_name": "Rice", "calories": 420}, occurredAt=at(5)))

    assert UserActivity.objects.get().calories_kcal == Decimal("420")


def test_unknown_entity_type_is_422(post_event):
    response = post_event(event("pizza_log", payload={}))

    assert response.status_code == 422
    assert "entityType" in response.json()["error"]["details"]
    assert SyncEvent.objects.get().status == SyncStatus.FAILED


def test_unknown_operation_is_422(post_event):
    response = post_event(event("app_open", "delete", payload={}))

    assert response.status_code == 422
    assert "operation" in response.json()["error"]["details"]
    assert UserActivity.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (event(payload={"calories": 100}), "food_name"),
        (event("weight_log", payload={"weight_kg": 5}), "weight_kg"),
        (event("water_log", payload={"amount_ml": "lots"}), "amount_ml"),
        (event("sleep_log", payload={"hours": 30}), "hours"),
        (event("exercise", payload={"exercise_type": "run"}), "duration_minutes"),
        (event("profile", "update", payload={"age": 7}), "age"),
        (event("goal", payload={"goal_type": "mood", "goal_value": 1, "goal_unit": "x"}), "goal_type"),
    ],
)
def test_invalid_payload_is_422_with_field_errors_and_no_domain_change(post_event, body, field):
    response = post_event(body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]["payload"]
    assert UserActivity.objects.count() == 0
    assert HealthGoal.objects.count() == 0
    assert CrmUserProfile.objects.count() == 0
    assert SyncEvent.objects.get().status == SyncStatus.FAILED


def test_missing_envelope_fields_are_422(post_event):
    response = post_event({"entityType": "food_log", "payload": {}})

    assert response.status_code == 422
    assert set(response.json()["error"]["details"]) >= {"operation", "userId"}


def test_external_id_is_required_to_update_or_delete_a_log(post_event):
    for operation in ("update", "delete"):
        response = post_event(
            event(operation=operation, external_id="", payload={"food_name": "Tea", "calories": 2}),
            key=f"k_{operation}",
        )

        assert response.status_code == 422
        assert "externalId of its create" in response.json()["error"]["details"]["externalId"][0]
    assert not UserActivity.objects.exists()


def test_a_create_without_external_id_is_named_by_its_idempotency_key(post_event):
    body = event(external_id="", payload={"food_name": "Tea", "calories": 2})

    first = post_event(body, key="tea_1")
    again = post_event(body, key="tea_1")
    other = post_event(body, key="tea_2")

    assert [r.json()["result"]["data"]["externalId"] for r in (first, again, other)] == ["tea_1", "tea_1", "tea_2"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert sorted(UserActivity.objects.values_list("external_id", flat=True)) == ["tea_1", "tea_2"]


def test_a_create_whose_key_is_too_long_to_name_it_needs_an_external_id(post_event):
    response = post_event(event(external_id="", payload={"food_name": "Tea", "calories": 2}), key="k" * 129)

    assert response.status_code == 422
    assert "Send externalId" in response.json()["error"]["details"]["externalId"][0]
    assert not UserActivity.objects.exists()


def test_event_for_unknown_user_creates_the_profile(post_event):
    response = post_event(event(user_id="brand_new", payload={"food_name": "Tea", "calories": 2}))

    assert response.status_code == 202
    assert response.json()["result"]["status"] == "success"
    assert response.json()["result"]["data"]["created"] is True
    profile = CrmUserProfile.objects.get(user_id="brand_new")
    assert profile.activities.count() == 1
    assert AuditLog.objects.filter(action="profile.created", user_id="brand_new", actor_type="app").count() == 1


def test_stale_update_is_recorded_and_not_applied(post_event):
    post_event(event(payload={"food_name": "Rice", "calories": 300}, occurredAt=at(1)))

    response = post_event(event(operation="update", payload={"food_name": "Rice", "calories": 999}, occurredAt=at(30)))

    assert response.status_code == 202
    result = response.json()["result"]
    assert result["status"] == "stale"
    assert result["data"]["conflicts"][0]["reason"] == "stale"
    assert UserActivity.objects.get().calories_kcal == Decimal("300")
    stale = SyncEvent.objects.get(status=SyncStatus.STALE)
    assert stale.conflicts[0]["resolution"] == "kept_newer"
    assert AuditLog.objects.filter(action="food_log.update").count() == 0


def test_update_older_than_a_delete_does_not_resurrect(post_event):
    post_event(event(payload={"food_name": "Rice", "calories": 300}, occurredAt=at(10)))
    post_event(event(operation="delete", occurredAt=at(1)))

    late = post_event(event(operation="update", payload={"food_name": "Rice", "calories": 1}, occurredAt=at(5)))

    assert late.json()["result"]["status"] == "stale"
    assert late.json()["result"]["data"]["conflicts"][0]["reason"] == "deleted_later"
    assert UserActivity.objects.count() == 0


def test_profile_create_and_update(post_event):
    created = post_event(
        event(
            "profile",
            "create",
            payload={"age": 28, "height_cm": 180, "activity_level": "active"},
            occurredAt=at(10),
        )
    )
    updated = post_event(event("profile", "update", payload={"age": 29, "email": "a@b.example"}, occurredAt=at(5)))

    assert created.status_code == updated.status_code == 202
    assert created.json()["result"]["status"] == updated.json()["result"]["status"] == "success"
    profile = CrmUserProfile.objects.get(user_id="user_sync")
    assert profile.age == 29
    assert profile.height_cm == Decimal("180")
    assert profile.activity_level == "active"
    assert len(profile.email_hash) == 64
    assert profile.field_provenance["age"]["source"] == "app"
    assert profile.field_provenance["age"]["verified"] is False
    assert AuditLog.objects.filter(action="profile.update", actor_type="app").count() == 1


def test_staff_verified_health_field_wins_and_the_conflict_is_recorded(post_event):
    ProfileFactory(
        user_id="user_sync",
        age=30,
        height_cm=Decimal("175.0"),
        field_provenance={"height_cm": {"source": "staff", "verified": True, "updated_at": at(days_ago=30)}},
    )

    response = post_event(event("profile", "update", payload={"height_cm": 190, "age": 31}, occurredAt=at(1)))

    assert response.status_code == 202
    result = response.json()["result"]
    assert result["status"] == "success"
    assert result["data"]["conflicts"] == [
        {
            "field": "height_cm",
            "appValue": 190.0,
            "crmValue": 175.0,
            "resolution": "crm_wins",
            "reason": "verified_by_staff",
        }
    ]
    profile = CrmUserProfile.objects.get(user_id="user_sync")
    assert profile.height_cm == Decimal("175.0")
    assert profile.age == 31  # not verified: the app's value applies
    assert SyncEvent.objects.get().conflicts[0]["resolution"] == "crm_wins"


def test_weight_log_does_not_overwrite_a_verified_weight(post_event):
    ProfileFactory(
        user_id="user_sync",
        current_weight_kg=Decimal("80.0"),
        field_provenance={"current_weight_kg": {"source": "staff", "verified": True, "updated_at": at(days_ago=2)}},
    )

    response = post_event(event("weight_log", payload={"weight_kg": 78}, occurredAt=at(1)))

    assert response.json()["result"]["data"]["conflicts"][0]["field"] == "current_weight_kg"
    assert CrmUserProfile.objects.get(user_id="user_sync").current_weight_kg == Decimal("80.0")
    assert UserActivity.objects.get().weight_kg == Decimal("78")


def test_weight_log_updates_an_unverified_profile_weight(post_event):
    ProfileFactory(user_id="user_sync", current_weight_kg=Decimal("80.0"))

    post_event(event("weight_log", payload={"weight_kg": 78.5}, occurredAt=at(1)))

    assert CrmUserProfile.objects.get(user_id="user_sync").current_weight_kg == Decimal("78.5")


def test_older_profile_event_is_stale(post_event):
    post_event(event("profile", "update", payload={"age": 40}, occurredAt=at(1)))

    response = post_event(event("profile", "update", payload={"age": 35}, occurredAt=at(60)))

    assert response.json()["result"]["status"] == "stale"
    assert CrmUserProfile.objects.get().age == 40
    assert SyncEvent.objects.filter(status=SyncStatus.STALE).count() == 1


def test_goal_create_update_progress_delete(post_event):
    goal_body = {
        "goal_type": "weight",
        "goal_value": 75,
        "goal_unit": "kg",
        "target_date": "2030-03-28",
        "priority": "high",
    }
    created = post_event(event("goal", "create", external_id="g1", payload=goal_body, occurredAt=at(10)))
    goal = HealthGoal.objects.get()
    assert created.json()["result"]["data"]["goalId"] == goal.pk
    assert (goal.metric, goal.source, goal.priority) == (GoalMetric.WEIGHT_KG, GoalSource.APP, "high")

    post_event(event("goal", "update", external_id="g1", payload={"goal_value": 74}, occurredAt=at(8)))
    progress = post_event(event("goal", "progress", external_id="g1", payload={"progress_pct": 45}, occurredAt=at(6)))
    goal.refresh_from_db()
    assert goal.goal_value == Decimal("74")
    assert goal.progress_pct == Decimal("45")
    assert progress.json()["result"]["data"]["progressPct"] == 45.0

    deleted = post_event(event("goal", "delete", external_id="g1", occurredAt=at(4)))
    assert deleted.json()["result"]["data"]["deleted"] is True
    assert HealthGoal.objects.count() == 0
    assert AuditLog.objects.filter(actor_type="app", entity_type="goal").count() == 4


def test_goal_update_for_unknown_goal_is_422(post_event):
    response = post_event(event("goal", "progress", external_id="nope", payload={"progress_pct": 10}))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "entity_not_found"
    assert SyncEvent.objects.get().status == SyncStatus.FAILED


def test_stale_goal_progress_is_not_applied(post_event):
    body = {"goal_type": "water", "goal_value": 2000, "goal_unit": "ml"}
    post_event(event("goal", "create", external_id="g1", payload=body, occurredAt=at(1)))

    response = post_event(event("goal", "progress", external_id="g1", payload={"progress_pct": 80}, occurredAt=at(9)))

    assert response.json()["result"]["status"] == "stale"
    assert HealthGoal.objects.get().progress_pct == 0


def test_weight_goal_progress_from_weight_logs(post_event):
    profile = ProfileFactory(user_id="user_sync")
    goal = GoalFactory(
        user=profile,
        goal_type=GoalType.WEIGHT,
        metric=GoalMetric.WEIGHT_KG,
        goal_value=Decimal("75"),
        goal_unit="kg",
        start_value=Decimal("80"),
    )

    response = post_event(event("weight_log", external_id="w1", payload={"weight_kg": 77.5}, occurredAt=at(1)))

    goal.refresh_from_db()
    assert goal.progress_pct == Decimal("50.00")
    assert goal.streak_days == 1
    assert response.json()["result"]["data"]["goals"] == [
        {"goalId": goal.pk, "metric": "weight_kg", "progressPct": 50.0, "streakDays": 1}
    ]


def test_nutrition_goal_progress_and_streak_from_daily_totals(post_event):
    profile = ProfileFactory(user_id="user_sync")
    goal = GoalFactory(user=profile, metric=GoalMetric.PROTEIN_G, goal_value=Decimal("120"))
    for days_ago in (2, 1):
        for n in range(2):
            post_event(
                event(
                    external_id=f"f{days_ago}{n}",
                    payload={
                        "food_name": "Chicken",
                        "calories": 400,
                        "protein": 60,
                        "date": str(TODAY - dt.timedelta(days=days_ago)),
                    },
                    occurredAt=at(days_ago=days_ago),
                )
            )

    post_event(
        event(
            external_id="today",
            payload={"food_name": "Eggs", "calories": 200, "protein": 30},
            occurredAt=at(1),
        )
    )

    goal.refresh_from_db()
    assert goal.progress_pct == Decimal("25.00")  # 30 of 120 g today
    assert goal.streak_days == 2  # yesterday and the day before; today is still in progress
    assert goal.streak_last_date == TODAY - dt.timedelta(days=1)

    post_event(event(operation="delete", external_id="f10", occurredAt=at(0)))
    goal.refresh_from_db()
    assert goal.streak_days == 0  # yesterday no longer reaches 120 g


def test_water_goal_progress(post_event):
    profile = ProfileFactory(user_id="user_sync")
    goal = GoalFactory(
        user=profile,
        goal_type=GoalType.WATER,
        metric=GoalMetric.WATER_ML,
        goal_value=Decimal("2000"),
        goal_unit="ml",
    )

    post_event(event("water_log", external_id="w1", payload={"amount_ml": 1500}, occurredAt=at(2)))
    post_event(event("water_log", external_id="w2", payload={"amount_ml": 500}, occurredAt=at(1)))

    goal.refresh_from_db()
    assert goal.progress_pct == Decimal("100.00")
    assert goal.streak_days == 1


def test_embedding_is_computed_after_commit(post_event, django_capture_on_commit_callbacks, celery_eager):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post_event(event(payload={"food_name": "Grilled salmon", "calories": 500, "protein": 40}))

    assert len(callbacks) == 1
    activity = UserActivity.objects.get()
    assert activity.embedding is not None
    assert len(activity.embedding) == 256
    assert abs(sum(v * v for v in activity.embedding) - 1.0) < 1e-4


def test_a_burst_of_events_schedules_one_embedding_sweep_that_embeds_them_all(
    post_event, django_capture_on_commit_callbacks
):
    from celery.signals import before_task_publish

    from activities.services import activities_embed_pending

    published = []

    def count(sender=None, **kwargs):
        published.append(sender)

    before_task_publish.connect(count)
    try:
        # given three food logs committed while no sweep has run yet (real broker, no eager mode)
        with django_capture_on_commit_callbacks(execute=True):
            for number in range(3):
                post_event(event(external_id=f"f{number}", payload={"food_name": f"Meal {number}", "calories": 400}))
        # then one sweep task was published for the burst, not one per activity
        assert published == ["activities.tasks.activities_embed_pending_task"]

        # when the sweep runs, every activity of the burst gets its embedding
        assert activities_embed_pending() == 3
        assert not UserActivity.objects.filter(embedding__isnull=True).exists()

        # and an event after the sweep started schedules the next one
        with django_capture_on_commit_callbacks(execute=True):
            post_event(event(external_id="f9", payload={"food_name": "Late snack", "calories": 150}))
        assert len(published) == 2
        assert activities_embed_pending() == 1
    finally:
        before_task_publish.disconnect(count)


def test_app_open_has_no_embedding_but_counts_as_last_active(post_event, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_event(event("app_open", external_id="", payload={}, occurredAt=at(3)))

    assert callbacks == []
    assert CrmUserProfile.objects.get().last_active_at.isoformat() == at(3)
    assert UserActivity.objects.get().activity_type == "app_open"


def test_last_active_at_never_moves_back(post_event):
    post_event(event(external_id="a", payload={"food_name": "Tea", "calories": 2}, occurredAt=at(1)))
    post_event(event(external_id="b", payload={"food_name": "Tea", "calories": 2}, occurredAt=at(days_ago=3)))

    assert CrmUserProfile.objects.get().last_active_at.isoformat() == at(1)
