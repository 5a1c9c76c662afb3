"""REST API of engagement: a user's activities, nutrition snapshot and metrics."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from activities.models import ActivityType
from activities.selectors import activity_list
from coaching.retention import user_metrics_get
from goals.selectors import nutrition_snapshot_get
from profiles.selectors import profile_get
from yahealthy_crm.api import (
    PAGINATION_PARAMETERS,
    ErrorSerializer,
    PaginationSerializer,
    envelope_serializer,
    list_envelope_serializer,
    paginated,
    query_params_validate,
    success,
)
from yahealthy_crm.permissions import not_found_error, user_scope_check

ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 404: ErrorSerializer}


def _profile_in_scope(request, user_id: str):
    user_scope_check(caller=request.user, user_id=user_id)
    profile = profile_get(user_id=user_id)
    if profile is None:
        raise not_found_error("User not found.")
    return profile


class ActivityOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.CharField()
    activity_type = serializers.CharField()
    external_id = serializers.CharField()
    source = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    logged_date = serializers.DateField()
    payload = serializers.JSONField()
    calories_kcal = serializers.FloatField(allow_null=True)
    protein_g = serializers.FloatField(allow_null=True)
    carbs_g = serializers.FloatField(allow_null=True)
    fat_g = serializers.FloatField(allow_null=True)
    water_ml = serializers.IntegerField(allow_null=True)
    weight_kg = serializers.FloatField(allow_null=True)
    sleep_hours = serializers.FloatField(allow_null=True)
    exercise_minutes = serializers.IntegerField(allow_null=True)
    calories_burned_kcal = serializers.FloatField(allow_null=True)
    steps = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class ActivityListParamsSerializer(PaginationSerializer):
    type = serializers.ChoiceField(choices=ActivityType.choices, required=False)


class UserActivitiesApi(APIView):
    @extend_schema(
        operation_id="users_activities_list",
        summary="A user's activities, newest first",
        parameters=[
            OpenApiParameter("type", str, enum=ActivityType.values, description="Only this activity type."),
            *PAGINATION_PARAMETERS,
        ],
        responses={200: list_envelope_serializer("ActivityList", ActivityOutputSerializer), **ERRORS},
        examples=[
            OpenApiExample(
                "Food logs",
                value={
                    "status": "success",
                    "data": [
                        {
                            "id": 90,
                            "user_id": "user_123",
                            "activity_type": "food_log",
                            "external_id": "food_12345",
                            "source": "app",
                            "occurred_at": "2025-12-28T12:30:00Z",
                            "logged_date": "2025-12-28",
                            "payload": {"food_name": "Grilled Chicken", "calories": 450},
                            "calories_kcal": 450.0,
                            "protein_g": 45.0,
                            "carbs_g": 50.0,
                            "fat_g": 12.0,
                            "water_ml": None,
                            "weight_kg": None,
                            "sleep_hours": None,
                            "exercise_minutes": None,
                            "calories_burned_kcal": None,
                            "steps": None,
                            "created_at": "2025-12-28T12:30:02Z",
                        }
                    ],
                    "pagination": {"limit": 20, "offset": 0, "count": 1, "nextOffset": None},
                },
                response_only=True,
            )
        ],
        tags=["engagement"],
    )
    def get(self, request, user_id: str):
        user_scope_check(caller=request.user, user_id=user_id)
        params = query_params_validate(ActivityListParamsSerializer, request)
        _profile_in_scope(request, user_id)
        activities = activity_list(user_id=user_id, activity_type=params.get("type"))
        return paginated(activities, params=params, serializer_class=ActivityOutputSerializer)


NUTRITION_EXAMPLE = {
    "userId": "user_123",
    "date": "2026-01-05",
    "days": 7,
    "daysLogged": 5,
    "today": {"calories_kcal": 1450.0, "protein_g": 96.0, "carbs_g": 160.0, "fat_g": 48.0},
    "averages7d": {"calories_kcal": 1890.4, "protein_g": 82.1, "carbs_g": 210.0, "fat_g": 61.3},
    "goals": {
        "protein_g": {
            "goalId": 7,
            "target": 120.0,
            "unit": "g",
            "todayPct": 80.0,
            "average7dPct": 68.4,
        }
    },
    "daily": [{"date": "2026-01-05", "calories_kcal": 1450.0, "protein_g": 96.0, "carbs_g": 160.0, "fat_g": 48.0}],
}


class NutritionSnapshotApi(APIView):
    @extend_schema(
        operation_id="users_nutrition_snapshot",
        summary="Today's and 7-day average calories and macros against the user's nutrition goals",
        description="Averages are over the days with food logs (`daysLogged`); `goals` has one entry per "
        "nutrient with an active goal.",
        responses={200: envelope_serializer("NutritionSnapshotEnvelope", serializers.JSONField()), **ERRORS},
        examples=[OpenApiExample("Snapshot", value={"status": "success", "data": NUTRITION_EXAMPLE})],
        tags=["engagement"],
    )
    def get(self, request, user_id: str):
        _profile_in_scope(request, user_id)
        return success(nutrition_snapshot_get(user_id=user_id))


METRICS_EXAMPLE = {
    "userId": "user_123",
    "activities7d": 18,
    "activities30d": 64,
    "activeDays14d": 11,
    "currentStreakDays": 6,
    "lastActiveAt": "2026-01-05T19:12:00+00:00",
    "engagementTier": "gold",
    "engagementTierSuggested": "gold",
    "churnRisk": 0.118,
    "churnFactors": {
        "daysInactive": 0.2,
        "activities7d": 18,
        "activitiesPrev7d": 15,
        "activities30d": 64,
        "activeDays14d": 11,
        "components": {"inactivity": 0.007, "low_volume": 0.0, "declining": 0.0, "irregular": 0.214},
    },
    "churnRiskStored": 0.12,
    "churnAssessedAt": "2026-01-04T08:00:00+00:00",
}


class UserMetricsApi(APIView):
    @extend_schema(
        operation_id="users_metrics",
        summary="Engagement metrics: activity counts, streak, last active, tier and churn risk",
        description="`churnRisk` and `churnFactors` are computed live; `churnRiskStored` is the value "
        "of the last weekly assessment (what /churn-risk lists).",
        responses={200: envelope_serializer("UserMetricsEnvelope", serializers.JSONField()), **ERRORS},
        examples=[OpenApiExample("Metrics", value={"status": "success", "data": METRICS_EXAMPLE})],
        tags=["engagement"],
    )
    def get(self, request, user_id: str):
        profile = _profile_in_scope(request, user_id)
        return success(user_metrics_get(profile=profile))
