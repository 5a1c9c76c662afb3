"""REST API of compliance: the audit trail of a user and the GDPR export."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from compliance.gdpr import user_export
from compliance.selectors import audit_log_for_user
from profiles.selectors import profile_for_caller_get
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
from yahealthy_crm.permissions import Caller, IsServiceOrStaff, export_permission_check, user_scope_check


class AuditEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor_type = serializers.CharField()
    actor_id = serializers.CharField()
    action = serializers.CharField()
    entity_type = serializers.CharField()
    entity_id = serializers.CharField()
    user_id = serializers.CharField()
    changes = serializers.JSONField(help_text='{"field": {"old": ..., "new": ...}}, PII redacted.')
    request_id = serializers.CharField()


class AuditLogApi(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        operation_id="audit_log_list",
        summary="A user's audit trail, newest first",
        description="Not for end users (403). 404 when the user does not exist (or was erased).",
        parameters=PAGINATION_PARAMETERS,
        responses={
            200: list_envelope_serializer("AuditLogList", AuditEntrySerializer),
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        examples=[
            OpenApiExample(
                "Audit trail",
                value={
                    "status": "success",
                    "data": [
                        {
                            "id": 812,
                            "created_at": "2026-01-05T19:12:00Z",
                            "actor_type": "staff",
                            "actor_id": "alice",
                            "action": "profile.updated",
                            "entity_type": "profile",
                            "entity_id": "41",
                            "user_id": "user_123",
                            "changes": {"height_cm": {"old": 179.0, "new": 180.0}},
                            "request_id": "3f0a6c1e9b5d4c2a8e7f6a5b4c3d2e1f",
                        }
                    ],
                    "pagination": {"limit": 20, "offset": 0, "count": 1, "nextOffset": None},
                },
                response_only=True,
            )
        ],
        tags=["compliance"],
    )
    def get(self, request, user_id: str):
        params = query_params_validate(PaginationSerializer, request)
        profile_for_caller_get(caller=request.user, user_id=user_id)
        return paginated(audit_log_for_user(user_id=user_id), params=params, serializer_class=AuditEntrySerializer)


class UserExportTablesSerializer(serializers.Serializer):
    """One list per CRM table; each row is that table's columns as they are (free-form on purpose)."""

    crm_user_profiles = serializers.ListField(child=serializers.DictField())
    crm_health_goals = serializers.ListField(child=serializers.DictField())
    crm_user_activities = serializers.ListField(child=serializers.DictField())
    crm_ai_insights = serializers.ListField(child=serializers.DictField())
    crm_coaching_sessions = serializers.ListField(child=serializers.DictField())
    crm_sync_events = serializers.ListField(child=serializers.DictField())
    crm_audit_log = serializers.ListField(child=serializers.DictField())


# Documents compliance.gdpr.user_export's result, which the view returns as is.
class UserExportSerializer(serializers.Serializer):
    userId = serializers.CharField()
    exportedAt = serializers.DateTimeField()
    tables = UserExportTablesSerializer()


class UserExportApi(APIView):
    @extend_schema(
        operation_id="users_export",
        summary="Export everything the CRM holds about a user (GDPR data portability)",
        description="All rows of the user in the seven CRM tables, column by column, embeddings included. "
        "The export itself is audited (`user.exported`).",
        responses={
            200: envelope_serializer("UserExportEnvelope", UserExportSerializer()),
            401: ErrorSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such user, or not the caller's own."),
        },
        examples=[
            OpenApiExample(
                "Export",
                value={
                    "status": "success",
                    "data": {
                        "userId": "user_123",
                        "exportedAt": "2026-01-05T19:15:00+00:00",
                        "tables": {
                            "crm_user_profiles": [{"id": 41, "user_id": "user_123", "age": 28}],
                            "crm_health_goals": [{"id": 7, "goal_type": "weight", "goal_value": 75.0}],
                            "crm_user_activities": [{"id": 90, "activity_type": "food_log"}],
                            "crm_ai_insights": [],
                            "crm_coaching_sessions": [],
                            "crm_sync_events": [],
                            "crm_audit_log": [{"id": 812, "action": "profile.created"}],
                        },
                    },
                },
                response_only=True,
            )
        ],
        tags=["compliance"],
    )
    def get(self, request, user_id: str):
        caller: Caller = request.user
        user_scope_check(caller=caller, user_id=user_id)
        export_permission_check(caller=caller)
        return success(user_export(user_id=user_id, actor_type=caller.actor_type, actor_id=caller.actor_id))
