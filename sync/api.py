"""HTTP layer of the sync app: the inbound webhook (thin; the service does the work)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sync.inbound.batch import MAX_BATCH_EVENTS, batch_body_size_check, webhook_batch_ingest
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


class _SignedWebhookApi(APIView):
    # The Standard Webhooks signature is the authentication; no session, no CSRF.
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []  # the raw body is verified before it is parsed
    renderer_classes = [JSONRenderer]


class AppEventWebhookApi(_SignedWebhookApi):
    """POST /api/crm/webhooks/app-event: one app event, signed per Standard Webhooks."""

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


def _declared_length(request: Request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class BatchEventSerializer(serializers.Serializer):
    """One event: the single endpoint's body plus its own optional idempotency key."""

    entityType = serializers.CharField()
    operation = serializers.CharField()
    userId = serializers.CharField()
    externalId = serializers.CharField(required=False)
    occurredAt = serializers.DateTimeField(required=False)
    payload = serializers.DictField(required=False)
    idempotencyKey = serializers.CharField(
        required=False,
        help_text="Default: `{entityType}:{externalId}:{operation}:{occurredAt}`, without occurredAt "
        "`webhook:{webhook-id}:{index}`.",
    )


class BatchRequestSerializer(serializers.Serializer):
    events = BatchEventSerializer(many=True, help_text=f"At most {MAX_BATCH_EVENTS} events, body at most 1 MiB.")


class BatchErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField()


class BatchItemSerializer(serializers.Serializer):
    """`accepted` (the single endpoint's 202 body, `replayed` added) or `error` (its error, per event)."""

    status = serializers.ChoiceField(choices=["accepted", "error"])
    idempotencyKey = serializers.CharField(allow_null=True)
    replayed = serializers.BooleanField(required=False, help_text="accepted: the stored first response")
    result = WebhookResultSerializer(required=False, help_text="accepted only")
    statusCode = serializers.IntegerField(required=False, help_text="error: the single endpoint's HTTP status")
    error = BatchErrorSerializer(required=False, help_text="error only")


class BatchCountsSerializer(serializers.Serializer):
    events = serializers.IntegerField()
    accepted = serializers.IntegerField()
    replayed = serializers.IntegerField()
    rejected = serializers.IntegerField()


class BatchResponseSerializer(serializers.Serializer):
    status = serializers.CharField(default="processed")
    counts = BatchCountsSerializer()
    results = BatchItemSerializer(many=True, help_text="One per event, in input order.")


# A really signed example: `webhook-signature` is Standard Webhooks' signature of the compact JSON of
# BATCH_EXAMPLE_BODY (json.dumps(..., separators=(",", ":"))) with the example secret below
# (tests/sync/test_batch.py checks it). Never a real deployment's secret.
BATCH_EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BATCH_EXAMPLE_HEADERS = {
    "webhook-id": "msg_batch_1",
    "webhook-timestamp": "1795782720",
    "webhook-signature": "v1,uPe1gs1Xdm/QY9/W5WNo7wznxYJceMh2jit+ztVWKpc=",
}
BATCH_EXAMPLE_BODY = {
    "events": [
        {
            "entityType": "food_log",
            "operation": "create",
            "userId": "user_123",
            "externalId": "food_1",
            "occurredAt": "2026-11-27T12:30:00Z",
            "payload": {"food_name": "Chicken", "calories": 400, "protein": 45},
            "idempotencyKey": "food_1",
        },
        {
            "entityType": "water_log",
            "operation": "create",
            "userId": "user_123",
            "externalId": "water_1",
            "occurredAt": "2026-11-27T12:31:00Z",
            "payload": {"amount_ml": 0},
        },
    ]
}
BATCH_EXAMPLE_SIGNED_WITH = (
    f"Signed with the example secret `{BATCH_EXAMPLE_SECRET}`: "
    + ", ".join(f"`{name}: {value}`" for name, value in BATCH_EXAMPLE_HEADERS.items())
    + ', over the compact JSON of the example body. docs/sync.md "Batch intake" shows the Python that signs.'
)


class AppEventsBatchWebhookApi(_SignedWebhookApi):
    """POST /api/crm/webhooks/app-events: up to 500 app events in one request, signed per Standard Webhooks."""

    @extend_schema(
        operation_id="webhook_app_events_batch",
        request={"application/json": BatchRequestSerializer},
        responses={200: BatchResponseSerializer},
        parameters=[
            OpenApiParameter(
                name,
                str,
                OpenApiParameter.HEADER,
                required=True,
                examples=[OpenApiExample("Signed example", value=value)],
            )
            for name, value in BATCH_EXAMPLE_HEADERS.items()
        ],
        examples=[
            OpenApiExample(
                "Two events, the second invalid",
                request_only=True,
                value=BATCH_EXAMPLE_BODY,
                description=BATCH_EXAMPLE_SIGNED_WITH,
            ),
            OpenApiExample(
                "Per-event results",
                response_only=True,
                status_codes=["200"],
                value={
                    "status": "processed",
                    "counts": {"events": 2, "accepted": 1, "replayed": 0, "rejected": 1},
                    "results": [
                        {
                            "status": "accepted",
                            "idempotencyKey": "food_1",
                            "result": {
                                "status": "success",
                                "data": {
                                    "activityId": 17,
                                    "activityType": "food_log",
                                    "externalId": "food_1",
                                    "loggedDate": "2026-11-27",
                                    "created": True,
                                    "goals": [],
                                    "syncEventId": 41,
                                    "conflicts": [],
                                },
                            },
                            "replayed": False,
                        },
                        {
                            "status": "error",
                            "idempotencyKey": None,
                            "statusCode": 422,
                            "error": {
                                "code": "validation_error",
                                "message": "The event has invalid fields.",
                                "details": {
                                    "payload": {"amount_ml": ["Ensure this value is greater than or equal to 1."]}
                                },
                            },
                        },
                    ],
                },
            ),
        ],
        description=(
            'Signed batch of app events (see docs/sync.md "Batch intake"). 200 with one result per event in '
            "input order; 401/400/422/413 only when the request itself is refused."
        ),
    )
    def post(self, request: Request) -> Response:
        batch_body_size_check(size=_declared_length(request))  # before request.body reads it into memory
        result = webhook_batch_ingest(body=request.body, headers=request.headers, request=request)
        response = Response(result.body, status=result.status_code)
        if result.retry_after_s:
            response["Retry-After"] = str(result.retry_after_s)
        return response
