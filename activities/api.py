"""REST API of activities: a user's activities (list, semantic search)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from activities.embeddings import embed_texts
from activities.models import ActivityType, UserActivity
from activities.selectors import activity_list, vector_search_by_user
from compliance.pii import redact_pii
from profiles.selectors import profile_for_caller_get
from yahealthy_crm.api import (
    USER_ERRORS,
    PaginationSerializer,
    StrictSerializer,
    envelope_serializer,
    list_envelope_serializer,
    paginated,
    query_params_validate,
    success,
)
from yahealthy_crm.permissions import user_scope_check


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
    type = serializers.ChoiceField(choices=ActivityType.choices, required=False, help_text="Only this activity type.")


class UserActivitiesApi(APIView):
    @extend_schema(
        operation_id="users_activities_list",
        summary="A user's activities, newest first",
        parameters=[ActivityListParamsSerializer],
        responses={200: list_envelope_serializer("ActivityList", ActivityOutputSerializer), **USER_ERRORS},
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
        user_scope_check(caller=request.user, user_id=user_id)  # another user's id: 404 before any 400
        params = query_params_validate(ActivityListParamsSerializer, request)
        profile_for_caller_get(caller=request.user, user_id=user_id)
        activities = activity_list(user_id=user_id, activity_type=params.get("type"))
        return paginated(activities, params=params, serializer_class=ActivityOutputSerializer)


class ActivitySearchParamsSerializer(StrictSerializer):
    q = serializers.CharField(max_length=500, help_text="What to look for, e.g. `chicken dinner`.")
    limit = serializers.IntegerField(min_value=1, max_value=50, required=False, default=10)


class ActivitySearchHitSerializer(ActivityOutputSerializer):
    similarity = serializers.FloatField()


class ActivitySearchApi(APIView):
    @extend_schema(
        operation_id="users_activities_search",
        summary="Semantic search over a user's activities",
        description="Nearest activities to `q` by cosine similarity of their embeddings (HNSW index, "
        "filtered by user), most similar first. Activities without an embedding yet are not found.",
        parameters=[ActivitySearchParamsSerializer],
        responses={200: envelope_serializer("ActivitySearch", ActivitySearchHitSerializer(many=True)), **USER_ERRORS},
        tags=["engagement"],
    )
    def get(self, request, user_id: str):
        params = query_params_validate(ActivitySearchParamsSerializer, request)
        profile_for_caller_get(caller=request.user, user_id=user_id)
        (vector,) = embed_texts([redact_pii(params["q"])])
        hits = vector_search_by_user(table="crm_user_activities", user_id=user_id, vector=vector, limit=params["limit"])
        by_id = UserActivity.objects.defer("embedding").in_bulk([hit_id for hit_id, _ in hits])
        rows = []
        for hit_id, distance in hits:
            if hit_id in by_id:
                activity = by_id[hit_id]
                activity.similarity = round(1 - distance, 4)
                rows.append(activity)
        return success(ActivitySearchHitSerializer(rows, many=True).data)
