"""REST API of goals: list and create a user's goals, update progress and status (accept suggestions);
the nutrition snapshot (nutrition against the user's goals)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.views import APIView

from goals.models import GOAL_TYPE_METRICS, GoalMetric, GoalPriority, GoalStatus, GoalType
from goals.rules import goal_units_deciding_metric
from goals.selectors import GOAL_STATUS_ALL, goal_list, nutrition_snapshot_get
from goals.services import goal_create, goal_update
from profiles.selectors import profile_for_caller_get
from yahealthy_crm.api import (
    USER_ERRORS,
    ErrorSerializer,
    PaginationSerializer,
    StrictSerializer,
    envelope_serializer,
    list_envelope_serializer,
    list_example,
    paginated,
    query_params_validate,
    success,
)
from yahealthy_crm.openapi import INLINE_ENUM
from yahealthy_crm.permissions import Caller, not_found_error, user_scope_check

# The webhook's goal payload takes the same range (sync.inbound.schemas.GoalPayloadSerializer).
GOAL_VALUE_MIN = Decimal("0.01")
GOAL_VALUE_MAX = Decimal(1_000_000)


def _not_in_past(value):
    if value is not None and value < timezone.localdate():
        raise serializers.ValidationError("The target date cannot be in the past.")
    return value


class GoalCreateInputSerializer(StrictSerializer):
    goal_type = serializers.ChoiceField(choices=GoalType.choices)
    goal_value = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=GOAL_VALUE_MIN, max_value=GOAL_VALUE_MAX, rounding=ROUND_HALF_UP
    )
    goal_unit = serializers.CharField(max_length=16)
    metric = serializers.ChoiceField(
        choices=GoalMetric.choices,
        required=False,
        help_text="Inferred from goal_type + goal_unit when clear.",
    )
    target_date = serializers.DateField(required=False, allow_null=True, validators=[_not_in_past])
    priority = serializers.ChoiceField(choices=GoalPriority.choices, required=False)
    status = serializers.ChoiceField(
        choices=[GoalStatus.ACTIVE, GoalStatus.SUGGESTED],
        required=False,
        help_text="`active` (default) or `suggested` (awaits the user's acceptance).",
    )
    start_value = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=GOAL_VALUE_MAX,
        required=False,
        allow_null=True,
        rounding=ROUND_HALF_UP,
    )
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=2000)


def _case_insensitive(text: str) -> str:
    return "".join(f"[{char.lower()}{char.upper()}]" if char.isalpha() else re.escape(char) for char in text)


class GoalCreateInputSchema(OpenApiSerializerExtension):
    """The schema of goal creation states which metric fits which goal type (goals.rules): one branch
    per goal type with its metrics; where a type has several, `metric` is required unless the unit
    decides it (`goal_units_deciding_metric`), as `goal_metric_resolve` does."""

    target_class = GoalCreateInputSerializer

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_basic_serializer(self.target, direction)
        branches = []
        for goal_type, metrics in GOAL_TYPE_METRICS.items():
            properties = {
                **base["properties"],
                "goal_type": {"type": "string", "enum": [goal_type], INLINE_ENUM: True},
                "metric": {
                    "type": "string",
                    "enum": sorted(metrics),
                    INLINE_ENUM: True,
                    "description": "Inferred from goal_type + goal_unit when the unit decides.",
                },
            }
            branch = {**base, "properties": properties, "required": list(base["required"])}
            units = goal_units_deciding_metric(goal_type=goal_type)
            if len(metrics) == 1:
                branches.append(branch)
                continue
            branches.append({**branch, "required": [*branch["required"], "metric"]})
            if units:
                unit_pattern = rf"^\s*(?:{'|'.join(_case_insensitive(unit) for unit in units)})\s*$"
                unit_schema = {"type": "string", "maxLength": 16, "pattern": unit_pattern}
                branches.append({**branch, "properties": {**properties, "goal_unit": unit_schema}})
        return {"anyOf": branches}


class GoalUpdateInputSerializer(StrictSerializer):
    progress_pct = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal(0), max_value=Decimal(100), rounding=ROUND_HALF_UP
    )
    status = serializers.ChoiceField(choices=GoalStatus.choices)
    goal_value = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=GOAL_VALUE_MIN, max_value=GOAL_VALUE_MAX, rounding=ROUND_HALF_UP
    )
    target_date = serializers.DateField(allow_null=True, validators=[_not_in_past])
    priority = serializers.ChoiceField(choices=GoalPriority.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class GoalOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.CharField()
    goal_type = serializers.CharField()
    metric = serializers.CharField()
    goal_value = serializers.FloatField()
    goal_unit = serializers.CharField()
    start_value = serializers.FloatField(allow_null=True)
    target_date = serializers.DateField(allow_null=True)
    priority = serializers.CharField()
    status = serializers.CharField()
    progress_pct = serializers.FloatField()
    streak_days = serializers.IntegerField()
    source = serializers.CharField()
    rationale = serializers.CharField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class GoalListParamsSerializer(PaginationSerializer):
    status = serializers.ChoiceField(
        choices=[*GoalStatus.values, GOAL_STATUS_ALL], required=False, help_text="Default `active`."
    )


GOAL_EXAMPLE = {
    "id": 7,
    "user_id": "user_123",
    "goal_type": "weight",
    "metric": "weight_kg",
    "goal_value": 75.0,
    "goal_unit": "kg",
    "start_value": None,
    "target_date": "2026-03-28",
    "priority": "high",
    "status": "active",
    "progress_pct": 45.0,
    "streak_days": 6,
    "source": "user",
    "rationale": "",
    "accepted_at": "2026-01-02T09:00:00Z",
    "completed_at": None,
    "created_at": "2026-01-02T09:00:00Z",
    "updated_at": "2026-01-05T19:12:00Z",
}
GoalEnvelope = envelope_serializer("GoalEnvelope", GoalOutputSerializer())
MAX_ID = 2**63 - 1
ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 404: ErrorSerializer}


class UserGoalsApi(APIView):
    @extend_schema(
        operation_id="users_goals_list",
        summary="A user's goals (active by default), newest first",
        parameters=[GoalListParamsSerializer],
        responses={200: list_envelope_serializer("GoalList", GoalOutputSerializer), **ERRORS},
        examples=[list_example("Active goals", GOAL_EXAMPLE)],
        tags=["goals"],
    )
    def get(self, request, user_id: str):
        user_scope_check(caller=request.user, user_id=user_id)  # another user's id: 404 before any 400
        params = query_params_validate(GoalListParamsSerializer, request)
        profile_for_caller_get(caller=request.user, user_id=user_id)
        goals = goal_list(user_id=user_id, status=params.get("status", GoalStatus.ACTIVE))
        return paginated(goals, params=params, serializer_class=GoalOutputSerializer)

    @extend_schema(
        operation_id="users_goals_create",
        summary="Create a goal for a user",
        description="`metric` is inferred from goal_type and goal_unit when unambiguous (400 "
        "`metric_required` otherwise). target_date cannot be in the past.",
        request=GoalCreateInputSerializer,
        responses={201: GoalEnvelope, **ERRORS},
        examples=[
            OpenApiExample(
                "Weight goal",
                value={
                    "goal_type": "weight",
                    "goal_value": 75,
                    "goal_unit": "kg",
                    "target_date": "2026-03-28",
                    "priority": "high",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Created",
                value={"status": "success", "data": GOAL_EXAMPLE},
                response_only=True,
                status_codes=["201"],
            ),
        ],
        tags=["goals"],
    )
    def post(self, request, user_id: str):
        caller: Caller = request.user
        user_scope_check(caller=caller, user_id=user_id)
        serializer = GoalCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        goal = goal_create(
            user_id=user_id,
            actor_type=caller.actor_type,
            actor_id=caller.actor_id,
            **serializer.validated_data,
        )
        return success(GoalOutputSerializer(goal).data, http_status=status.HTTP_201_CREATED)


class GoalDetailApi(APIView):
    @extend_schema(
        operation_id="goals_update",
        summary="Update a goal's progress or status",
        description="Status transitions: suggested -> active (accept) | abandoned (decline); "
        "active -> completed | abandoned; abandoned -> active. Anything else is 409 "
        "`invalid_status_transition`. End users can only update their own goals (404 otherwise).",
        request=GoalUpdateInputSerializer,
        responses={
            200: GoalEnvelope,
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="Status transition not allowed."),
        },
        examples=[
            OpenApiExample("Progress", value={"progress_pct": 45, "status": "active"}, request_only=True),
            OpenApiExample("Updated", value={"status": "success", "data": GOAL_EXAMPLE}, response_only=True),
        ],
        tags=["goals"],
    )
    def put(self, request, goal_id: int):
        caller: Caller = request.user
        if goal_id > MAX_ID:
            raise not_found_error("Goal not found.")
        serializer = GoalUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        goal = goal_update(
            goal_id=goal_id,
            actor_type=caller.actor_type,
            actor_id=caller.actor_id,
            fields=dict(serializer.validated_data),
            user_id=caller.user_id if caller.is_end_user else None,
        )
        return success(GoalOutputSerializer(goal).data)


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


# Nutrient keys: activities.selectors.NUTRIENTS (test_openapi_fields checks that they match).
class NutrientTotalsSerializer(serializers.Serializer):
    calories_kcal = serializers.FloatField()
    protein_g = serializers.FloatField()
    carbs_g = serializers.FloatField()
    fat_g = serializers.FloatField()


class NutrientAveragesSerializer(serializers.Serializer):
    calories_kcal = serializers.FloatField(allow_null=True)
    protein_g = serializers.FloatField(allow_null=True)
    carbs_g = serializers.FloatField(allow_null=True)
    fat_g = serializers.FloatField(allow_null=True)


class NutritionDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    calories_kcal = serializers.FloatField()
    protein_g = serializers.FloatField()
    carbs_g = serializers.FloatField()
    fat_g = serializers.FloatField()


class NutrientGoalProgressSerializer(serializers.Serializer):
    goalId = serializers.IntegerField(source="goal_id")
    target = serializers.FloatField()
    unit = serializers.CharField()
    todayPct = serializers.FloatField(source="today_pct", allow_null=True)
    average7dPct = serializers.FloatField(source="average_7d_pct", allow_null=True)


class NutritionSnapshotSerializer(serializers.Serializer):
    userId = serializers.CharField(source="user_id")
    date = serializers.DateField()
    days = serializers.IntegerField()
    daysLogged = serializers.IntegerField(source="days_logged")
    today = NutrientTotalsSerializer()
    averages7d = NutrientAveragesSerializer(source="averages_7d")
    goals = serializers.DictField(
        child=NutrientGoalProgressSerializer(), help_text="One entry per nutrient with an active goal."
    )
    daily = NutritionDaySerializer(many=True, help_text="Days with food logs, oldest first.")


class NutritionSnapshotApi(APIView):
    @extend_schema(
        operation_id="users_nutrition_snapshot",
        summary="Today's and 7-day average calories and macros against the user's nutrition goals",
        description="Averages are over the days with food logs (`daysLogged`); `goals` has one entry per "
        "nutrient with an active goal.",
        responses={
            200: envelope_serializer("NutritionSnapshotEnvelope", NutritionSnapshotSerializer()),
            **USER_ERRORS,
        },
        examples=[OpenApiExample("Snapshot", value={"status": "success", "data": NUTRITION_EXAMPLE})],
        tags=["engagement"],
    )
    def get(self, request, user_id: str):
        profile_for_caller_get(caller=request.user, user_id=user_id)
        return success(NutritionSnapshotSerializer(nutrition_snapshot_get(user_id=user_id)).data)
