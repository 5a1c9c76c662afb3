"""REST API of profiles: create, read, update and (GDPR) erase a user's CRM profile; churn risk."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import django_filters
from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.gdpr import gdpr_erase
from profiles.models import ActivityLevel, ChurnBand, CrmUserProfile, EngagementTier, LifecycleStage, PrimaryGoal
from profiles.selectors import (
    CHURN_HIGH_RISK,
    INACTIVE_DAYS_CHOICES,
    ProfileSegment,
    churn_risk_list,
    profile_for_caller_get,
    profile_segment_filter,
)
from profiles.services import profile_create, profile_update
from yahealthy_crm.api import (
    USER_ERRORS,
    USER_ID_REGEX,
    ErrorSerializer,
    PaginationSerializer,
    StrictSerializer,
    envelope_serializer,
    list_envelope_serializer,
    page_size_field,
    paginated,
    query_params_validate,
    success,
)
from yahealthy_crm.pagination import KeysetOrdering, cursor_list_envelope_serializer, keyset_page
from yahealthy_crm.permissions import (
    Caller,
    IsCaller,
    IsServiceOrStaff,
    erase_permission_check,
    permission_denied_error,
    user_scope_check,
)

# \Z, not $: Python's $ also matches before a final newline (drf-spectacular writes \Z as $ for ECMA).
USER_ID_PATTERN = rf"^{USER_ID_REGEX}\Z"
PHONE_PATTERN = r"^\+?[\d\s().-]{7,20}\Z"


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
    user_id = serializers.RegexField(USER_ID_PATTERN, max_length=64, trim_whitespace=False)
    email = serializers.EmailField(
        max_length=254, required=False, write_only=True, help_text="Stored as a keyed hash only."
    )
    phone = serializers.RegexField(
        PHONE_PATTERN,
        max_length=21,
        required=False,
        write_only=True,
        trim_whitespace=False,
        help_text="Stored as a keyed hash only.",
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
        erase_permission_check(caller=caller)
        gdpr_erase(user_id=user_id, actor_type=caller.actor_type, actor_id=caller.actor_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChurnRiskParamsSerializer(PaginationSerializer):
    min_risk = serializers.FloatField(
        min_value=0, max_value=1, required=False, help_text=f"Threshold 0..1 (default {CHURN_HIGH_RISK})."
    )
    lifecycle = serializers.ChoiceField(
        choices=LifecycleStage.choices, required=False, help_text="Only users in this lifecycle stage."
    )
    band = serializers.ChoiceField(
        choices=ChurnBand.choices, required=False, help_text="Only users in this stored churn band."
    )


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
        parameters=[ChurnRiskParamsSerializer],
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
            min_risk=Decimal(str(params["min_risk"])) if "min_risk" in params else CHURN_HIGH_RISK,
            lifecycle_stage=params.get("lifecycle"),
            churn_band=params.get("band"),
        )
        return paginated(queryset, params=params, serializer_class=ChurnRiskItemSerializer)


# --- GET /users: list and filter users (segments; the same filters as the admin list) ----------------

USER_LIST_ORDERINGS = ("-churn_risk", "churn_risk", "-created_at", "created_at", "user_id")
_BOOLEAN_CHOICES = [("true", "true"), ("false", "false")]


def _boolean(value: str) -> bool:
    return value == "true"


class UserListFilter(django_filters.FilterSet):
    """Parses and validates the list's filters; the segment rule itself is `profile_segment_filter`."""

    band = django_filters.ChoiceFilter(choices=ChurnBand.choices, method="segment")
    tier = django_filters.ChoiceFilter(choices=EngagementTier.choices, method="segment")
    lifecycle = django_filters.ChoiceFilter(choices=LifecycleStage.choices, method="segment")
    primary_goal = django_filters.ChoiceFilter(choices=PrimaryGoal.choices, method="segment")
    inactive_days = django_filters.TypedChoiceFilter(
        choices=[(str(days), str(days)) for days in INACTIVE_DAYS_CHOICES], coerce=int, method="segment"
    )
    consent_ai = django_filters.TypedChoiceFilter(choices=_BOOLEAN_CHOICES, coerce=_boolean, method="segment")
    consent_marketing = django_filters.TypedChoiceFilter(choices=_BOOLEAN_CHOICES, coerce=_boolean, method="segment")
    search = django_filters.CharFilter(max_length=64, method="segment")

    def segment(self, queryset, name, value):
        return queryset  # all filters are applied together in filter_queryset

    def filter_queryset(self, queryset):
        data = self.form.cleaned_data

        def given(name):
            value = data.get(name)
            return None if value in (None, "") else value

        segment = ProfileSegment(
            churn_band=given("band"),
            engagement_tier=given("tier"),
            lifecycle_stage=given("lifecycle"),
            primary_goal=given("primary_goal"),
            inactive_days=given("inactive_days"),
            consent_ai_processing=given("consent_ai"),
            consent_marketing=given("consent_marketing"),
            user_id_contains=given("search"),
        )
        return profile_segment_filter(queryset, segment=segment)


class UserListParamsSerializer(StrictSerializer):
    """The list's own parameters; the filters are UserListFilter's."""

    limit = page_size_field()
    ordering = serializers.ChoiceField(
        choices=USER_LIST_ORDERINGS, required=False, default="-churn_risk", help_text="Sort order."
    )
    cursor = serializers.CharField(
        max_length=512, required=False, help_text="`pagination.nextCursor` of the previous page, as it is."
    )


class UserListItemSerializer(serializers.Serializer):
    user_id = serializers.CharField()
    engagement_tier = serializers.ChoiceField(choices=EngagementTier.choices)
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices)
    churn_risk = serializers.FloatField()
    churn_band = serializers.ChoiceField(choices=ChurnBand.choices)
    primary_goal = serializers.CharField()
    activity_level = serializers.CharField()
    last_active_at = serializers.DateTimeField(allow_null=True)
    consent_ai_processing = serializers.BooleanField()
    consent_marketing = serializers.BooleanField()
    created_at = serializers.DateTimeField()


def _filter_parameter(name: str, values, description: str) -> OpenApiParameter:
    """A UserListFilter parameter as it is on the wire: one of its values, or empty (no filter)."""
    return OpenApiParameter(
        name, {"type": "string", "enum": ["", *(str(value) for value in values)]}, description=description
    )


USER_LIST_PARAMETERS = [
    _filter_parameter("band", ChurnBand.values, "Stored churn band."),
    _filter_parameter("tier", EngagementTier.values, "Engagement tier."),
    _filter_parameter("lifecycle", LifecycleStage.values, "Lifecycle stage (daily)."),
    _filter_parameter("primary_goal", PrimaryGoal.values, "Primary goal."),
    _filter_parameter(
        "inactive_days",
        INACTIVE_DAYS_CHOICES,
        "No activity for at least this many days (never-active users count from their creation).",
    ),
    _filter_parameter("consent_ai", ["true", "false"], "AI-processing consent given (`true`) or not (`false`)."),
    _filter_parameter("consent_marketing", ["true", "false"], "Marketing consent given (`true`) or not (`false`)."),
    OpenApiParameter(
        "search",
        {"type": "string", "maxLength": 64, "pattern": r"^[^\x00]*$"},  # no NUL; blank is no filter
        description="Part of the user id (case-insensitive).",
    ),
    UserListParamsSerializer,  # limit, ordering, cursor: as validated (yahealthy_crm/openapi.py)
]


class UserListCreateApi(UserCreateApi):
    """`/users`: POST creates a profile (any caller, end users only their own), GET lists users (service
    keys and staff only)."""

    def get_permissions(self):
        if self.request.method == "GET":
            return [IsServiceOrStaff()]
        return [IsCaller()]

    @extend_schema(
        operation_id="users_list",
        summary="List and filter users (segments), cursor-paginated",
        description="The filters of the admin's user list: churn band, engagement tier, lifecycle stage, "
        "primary goal, inactive 7/14/30 days, consent, part of the user id. Pages follow "
        "`pagination.nextCursor` (stable while users are added). Service keys and staff only; end users 403.",
        parameters=USER_LIST_PARAMETERS,
        responses={
            200: cursor_list_envelope_serializer("UserList", UserListItemSerializer),
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
        },
        examples=[
            OpenApiExample(
                "High-risk users inactive for 14+ days",
                value={
                    "status": "success",
                    "data": [
                        {
                            "user_id": "user_456",
                            "engagement_tier": "bronze",
                            "lifecycle_stage": "dormant",
                            "churn_risk": 0.91,
                            "churn_band": "high",
                            "primary_goal": "weight_loss",
                            "activity_level": "light",
                            "last_active_at": "2025-12-11T07:00:00Z",
                            "consent_ai_processing": True,
                            "consent_marketing": False,
                            "created_at": "2025-10-01T10:00:00Z",
                        }
                    ],
                    "pagination": {"limit": 20, "ordering": "-churn_risk", "nextCursor": "eyJvIjogIi1jaHVy..."},
                },
                response_only=True,
            )
        ],
        tags=["users"],
    )
    def get(self, request):
        filter_names = set(UserListFilter.base_filters)
        own = {key: value for key, value in request.query_params.items() if key not in filter_names}
        params = UserListParamsSerializer(data=own, context={"query_params": True})
        params.is_valid(raise_exception=True)
        filterset = UserListFilter(request.query_params, queryset=CrmUserProfile.objects.all())
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        ordering = KeysetOrdering(params.validated_data["ordering"])
        limit = params.validated_data.get("limit") or settings.API_PAGE_SIZE_DEFAULT
        rows, next_cursor = keyset_page(
            filterset.qs, ordering=ordering, limit=limit, cursor=params.validated_data.get("cursor")
        )
        return Response(
            {
                "status": "success",
                "data": UserListItemSerializer(rows, many=True).data,
                "pagination": {"limit": limit, "ordering": ordering.name, "nextCursor": next_cursor},
            }
        )
