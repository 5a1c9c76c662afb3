"""REST API of profiles: create, read, update and (GDPR) erase a user's CRM profile; churn risk."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.gdpr import gdpr_erase
from profiles.models import ActivityLevel, ChurnBand, CrmUserProfile, EngagementTier, LifecycleStage, PrimaryGoal
from profiles.selectors import CHURN_HIGH_RISK, churn_risk_list, profile_for_caller_get
from profiles.services import profile_create, profile_update
from yahealthy_crm.api import (
    PAGINATION_PARAMETERS,
    USER_ERRORS,
    USER_ID_REGEX,
    ErrorSerializer,
    PaginationSerializer,
    StrictSerializer,
    envelope_serializer,
    list_envelope_serializer,
    paginated,
    query_params_validate,
    success,
)
from yahealthy_crm.permissions import (
    Caller,
    IsServiceOrStaff,
    permission_denied_error,
    user_scope_check,
)

USER_ID_PATTERN = rf"^{USER_ID_REGEX}$"


class ProfileFieldsSerializer(StrictSerializer):
    age = serializers.IntegerField(min_value=13, max_value=120, allow_null=True, required=False)
    height_cm = serializers.DecimalField(
        max_digits=5,
        decimal_places=1,
        min_value=Decimal(50),
        max_value=Decimal(280),
        allow_null=True,
        required=False,
        rounding=ROUND_HALF_UP,
    )
    current_weight_kg = serializers.DecimalField(
        max_digits=5,
        decimal_places=1,
        min_value=Decimal(20),
        max_value=Decimal(500),
        allow_null=True,
        required=False,
        rounding=ROUND_HALF_UP,
    )
    activity_level = serializers.ChoiceField(choices=ActivityLevel.choices, required=False)
    primary_goal = serializers.ChoiceField(choices=PrimaryGoal.choices, required=False)
    engagement_tier = serializers.ChoiceField(choices=EngagementTier.choices, required=False)
    consent_ai_processing = serializers.BooleanField(required=False)
    consent_marketing = serializers.BooleanField(required=False)


class ProfileCreateInputSerializer(ProfileFieldsSerializer):
    user_id = serializers.RegexField(USER_ID_PATTERN, max_length=64)
    email = serializers.EmailField(required=False, write_only=True, help_text="Stored as a keyed hash only.")
    phone = serializers.RegexField(
        r"^\+?[\d\s().-]{7,20}$", required=False, write_only=True, help_text="Stored as a keyed hash only."
    )


class ProfileUpdateInputSerializer(ProfileFieldsSerializer):
    pass


class ProfileOutputSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    age = serializers.IntegerField(allow_null=True)
    height_cm = serializers.FloatField(allow_null=True)
    current_weight_kg = serializers.FloatField(allow_null=True)
    activity_level = serializers.CharField()
    primary_goal = serializers.CharField()
    engagement_tier = serializers.CharField()
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, help_text="Daily (docs/retention.md).")
    lifecycle_changed_at = serializers.DateTimeField(allow_null=True)
    churn_risk = serializers.FloatField()
    churn_band = serializers.ChoiceField(choices=ChurnBand.choices)
    churn_factors = serializers.JSONField()
    churn_assessed_at = serializers.DateTimeField(allow_null=True)
    last_active_at = serializers.DateTimeField(allow_null=True)
    consent_ai_processing = serializers.BooleanField()
    consent_ai_processing_at = serializers.DateTimeField(allow_null=True)
    consent_marketing = serializers.BooleanField()
    consent_marketing_at = serializers.DateTimeField(allow_null=True)
    verified_fields = serializers.SerializerMethodField()
    field_provenance = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_verified_fields(self, profile: CrmUserProfile) -> list[str]:
        return sorted(name for name, info in profile.field_provenance.items() if info.get("verified"))


ProfileEnvelope = envelope_serializer("ProfileEnvelope", ProfileOutputSerializer())

PROFILE_EXAMPLE = {
    "status": "success",
    "data": {
        "user_id": "user_123",
        "age": 28,
        "height_cm": 180.0,
        "current_weight_kg": 82.5,
        "activity_level": "active",
        "primary_goal": "muscle_gain",
        "engagement_tier": "gold",
        "lifecycle_stage": "current",
        "lifecycle_changed_at": "2025-12-15T05:30:00Z",
        "churn_risk": 0.12,
        "churn_band": "low",
        "churn_factors": {"daysInactive": 0.4, "activities30d": 54},
        "churn_assessed_at": "2026-01-04T08:00:00Z",
        "last_active_at": "2026-01-05T19:12:00Z",
        "consent_ai_processing": True,
        "consent_ai_processing_at": "2025-12-01T10:00:00Z",
        "consent_marketing": False,
        "consent_marketing_at": "2025-12-01T10:00:00Z",
        "verified_fields": ["height_cm"],
        "field_provenance": {
            "age": {"source": "app", "verified": False, "updated_at": "2025-12-01T10:00:00+00:00"},
            "height_cm": {"source": "staff", "verified": True, "updated_at": "2026-01-02T09:30:00+00:00"},
        },
        "created_at": "2025-12-01T10:00:00Z",
        "updated_at": "2026-01-05T19:12:00Z",
    },
}


def _tier_check(caller: Caller, fields: dict) -> None:
    if caller.is_end_user and "engagement_tier" in fields:
        raise permission_denied_error(
            "End users cannot change their engagement tier.", details={"fields": ["engagement_tier"]}
        )


class UserCreateApi(APIView):
    @extend_schema(
        operation_id="users_create",
        summary="Create a user's CRM profile",
        description="Consent defaults: AI processing granted, marketing not granted (both timestamped). "
        "An end user may only create their own profile. 409 `user_exists` / `user_erased`.",
        request=ProfileCreateInputSerializer,
        responses={201: ProfileEnvelope, **USER_ERRORS, 403: ErrorSerializer, 409: ErrorSerializer},
        examples=[
            OpenApiExample("Create", value={"user_id": "user_123", "age": 30, "height_cm": 180}, request_only=True),
            OpenApiExample("Created", value=PROFILE_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
        tags=["users"],
    )
    def post(self, request):
        serializer = ProfileCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        caller: Caller = request.user
        if caller.is_end_user and data["user_id"] != caller.user_id:
            raise permission_denied_error("End users can only create their own profile.")
        _tier_check(caller, data)
        user_id = data.pop("user_id")
        profile = profile_create(
            user_id=user_id,
            actor_type=caller.actor_type,
            actor_id=caller.actor_id,
            fields={k: v for k, v in data.items() if k not in ("email", "phone")},
            email=data.get("email", ""),
            phone=data.get("phone", ""),
        )
        return success(ProfileOutputSerializer(profile).data, http_status=status.HTTP_201_CREATED)


class UserDetailApi(APIView):
    @extend_schema(
        operation_id="users_retrieve",
        summary="Get a user's CRM profile",
        responses={200: ProfileEnvelope, **USER_ERRORS},
        examples=[OpenApiExample("Profile", value=PROFILE_EXAMPLE, response_only=True)],
        tags=["users"],
    )
    def get(self, request, user_id: str):
        profile = profile_for_caller_get(caller=request.user, user_id=user_id)
        return success(ProfileOutputSerializer(profile).data)

    @extend_schema(
        operation_id="users_update",
        summary="Update a user's CRM profile (partial)",
        description="Only the fields sent are changed. Health-profile fields written by staff become "
        "CRM-verified. Consent changes are timestamped and audited. End users cannot set "
        "`engagement_tier` (403).",
        request=ProfileUpdateInputSerializer,
        responses={200: ProfileEnvelope, **USER_ERRORS, 403: ErrorSerializer},
        examples=[
            OpenApiExample(
                "Update",
                value={"age": 28, "height_cm": 180, "activity_level": "active", "engagement_tier": "gold"},
                request_only=True,
            ),
            OpenApiExample("Updated", value=PROFILE_EXAMPLE, response_only=True),
        ],
        tags=["users"],
    )
    def put(self, request, user_id: str):
        caller: Caller = request.user
        user_scope_check(caller=caller, user_id=user_id)
        serializer = ProfileUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        _tier_check(caller, serializer.validated_data)
        profile = profile_update(
            user_id=user_id,
            actor_type=caller.actor_type,
            actor_id=caller.actor_id,
            fields=dict(serializer.validated_data),
        )
        return success(ProfileOutputSerializer(profile).data)

    @extend_schema(
        operation_id="users_destroy",
        summary="Erase a user (GDPR right to be forgotten)",
        description="Deletes the user's rows from all seven CRM tables in one transaction and keeps a "
        "pseudonymous tombstone. Idempotent: erasing an already erased id answers 204 again; an id "
        "that never existed answers 404. An erased id can never be created again (409 `user_erased`).",
        request=None,
        responses={204: OpenApiResponse(description="Erased (or already erased)."), **USER_ERRORS},
        examples=[
            OpenApiExample(
                "Never existed",
                value={
                    "status": "error",
                    "error": {"code": "not_found", "message": "User not found.", "details": {}},
                },
                response_only=True,
                status_codes=["404"],
            )
        ],
        tags=["users"],
    )
    def delete(self, request, user_id: str):
        caller: Caller = request.user
        user_scope_check(caller=caller, user_id=user_id)
        gdpr_erase(user_id=user_id, actor_type=caller.actor_type, actor_id=caller.actor_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChurnRiskParamsSerializer(PaginationSerializer):
    min_risk = serializers.DecimalField(
        max_digits=4, decimal_places=3, min_value=Decimal(0), max_value=Decimal(1), required=False
    )
    lifecycle = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    band = serializers.ChoiceField(choices=ChurnBand.choices, required=False)


class ChurnRiskItemSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    churn_risk = serializers.FloatField()
    churn_band = serializers.ChoiceField(choices=ChurnBand.choices)
    churn_factors = serializers.JSONField()
    churn_assessed_at = serializers.DateTimeField(allow_null=True)
    engagement_tier = serializers.CharField()
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices)
    last_active_at = serializers.DateTimeField(allow_null=True)


class ChurnRiskApi(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        operation_id="churn_risk_list",
        summary="Users at risk of churning, highest risk first",
        description="Uses the risk and band stored by the weekly churn assessment; `lifecycle` and `band` "
        "narrow the list to a lifecycle stage (daily) and a churn band. Not for end users (403).",
        parameters=[
            OpenApiParameter("min_risk", float, description="Threshold 0..1 (default 0.7)."),
            OpenApiParameter(
                "lifecycle", str, enum=LifecycleStage.values, description="Only users in this lifecycle stage."
            ),
            OpenApiParameter("band", str, enum=ChurnBand.values, description="Only users in this stored churn band."),
            *PAGINATION_PARAMETERS,
        ],
        responses={
            200: list_envelope_serializer("ChurnRiskList", ChurnRiskItemSerializer),
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
        },
        examples=[
            OpenApiExample(
                "At-risk users",
                value={
                    "status": "success",
                    "data": [
                        {
                            "user_id": "user_456",
                            "churn_risk": 0.91,
                            "churn_band": "high",
                            "churn_factors": {"daysInactive": 24.0, "activities30d": 3},
                            "churn_assessed_at": "2026-01-04T08:00:00Z",
                            "engagement_tier": "bronze",
                            "lifecycle_stage": "dormant",
                            "last_active_at": "2025-12-11T07:00:00Z",
                        }
                    ],
                    "pagination": {"limit": 20, "offset": 0, "count": 1, "nextOffset": None},
                },
                response_only=True,
            )
        ],
        tags=["engagement"],
    )
    def get(self, request):
        params = query_params_validate(ChurnRiskParamsSerializer, request)
        queryset = churn_risk_list(
            min_risk=params.get("min_risk", CHURN_HIGH_RISK),
            lifecycle_stage=params.get("lifecycle"),
            churn_band=params.get("band"),
        )
        return paginated(queryset, params=params, serializer_class=ChurnRiskItemSerializer)
