"""HTTP layer of the sync app: the inbound webhook (thin; the service does the work)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sync.inbound.intake import webhook_body_size_check, webhook_event_ingest


class WebhookAppliedSerializer(serializers.Serializer):
    """What was applied; besides these two, the fields of the entity type (docs/sync.md "Responses")."""

    syncEventId = serializers.IntegerField()
    conflicts = serializers.ListField(child=serializers.DictField())


class WebhookResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["success", "stale"], help_text="`stale`: older than the CRM's data.")
    data = WebhookAppliedSerializer()


# Documents the 202 body. The view returns the stored body as is: a replay repeats it byte for byte.
class WebhookAcceptedSerializer(serializers.Serializer):
    status = serializers.CharField(default="accepted")
    idempotencyKey = serializers.CharField()
    result = WebhookResultSerializer()


class AppEventWebhookApi(APIView):
    """POST /api/crm/webhooks/app-event: one app event, signed per Standard Webhooks."""

    # The Standard Webhooks signature is the authentication; no session, no CSRF.
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []  # the raw body is verified before it is parsed
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="webhook_app_event",
        request={"application/json": {"type": "object"}},
        responses={202: WebhookAcceptedSerializer},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("webhook-id", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("webhook-timestamp", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("webhook-signature", str, OpenApiParameter.HEADER, required=True),
        ],
        description="Signed app event (see docs/sync.md). 202 on success or replay.",
    )
    def post(self, request: Request) -> Response:
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        webhook_body_size_check(size=declared)  # before request.body reads it into memory
        result = webhook_event_ingest(
            body=request.body,
            headers=request.headers,
            idempotency_key=request.headers.get("Idempotency-Key", "").strip(),
            request=request,
        )
        response = Response(result.body, status=result.status_code)
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response
