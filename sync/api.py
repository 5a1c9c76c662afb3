"""HTTP layer of the sync app: the inbound webhook (thin; the service does the work)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from goals.models import GOAL_TYPE_METRICS
from sync.inbound.batch import (
    MAX_BATCH_BODY_BYTES,
    MAX_BATCH_EVENTS,
    TOO_LARGE_MESSAGE,
    batch_body_size_check,
    webhook_batch_ingest,
)
from sync.inbound.intake import (
    MAX_BODY_BYTES,
    webhook_body_size_check,
    webhook_content_type_check,
    webhook_event_ingest,
)
from sync.inbound.schemas import (
    ENTITY_OPERATIONS,
    EXTERNAL_ID_MAX_LENGTH,
    EXTERNAL_ID_REQUIRED,
    PAYLOAD_SERIALIZERS,
    USER_ID_PATTERN,
    GoalPayloadSerializer,
)
from yahealthy_crm.api import ErrorSerializer
from yahealthy_crm.openapi import INLINE_ENUM, WEBHOOK_SECURITY


class WebhookAppliedSerializer(serializers.Serializer):
    """What was applied; besides these two, the fields of the entity type (docs/sync.md "Responses")."""

    syncEventId = serializers.IntegerField()
    conflicts = serializers.ListField(child=serializers.DictField())


class WebhookResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["success", "stale"], help_text="`stale`: older than the CRM's data.")
    data = WebhookAppliedSerializer()


# Documents the 202 body. The view returns the stored body as is: a replay repeats the same JSON value
# (its object keys in jsonb's order, which may differ from the first answer's).
class WebhookAcceptedSerializer(serializers.Serializer):
    status = serializers.CharField(default="accepted")
    idempotencyKey = serializers.CharField()
    result = WebhookResultSerializer()


# --- The request body of the single webhook, for the schema: one variant per entity type and group
# of operations that share a payload rule (sync.inbound.schemas decides; these only describe it).


class GoalPayloadSchema(OpenApiSerializerExtension):
    """A goal event's `metric` must fit its `goal_type` (goals.models.GOAL_TYPE_METRICS): one branch per
    goal type; without a metric the CRM infers it (docs/sync.md). An update may leave goal_type out,
    and then its metric is checked against the stored goal's type, which no schema can state."""

    target_class = GoalPayloadSerializer

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_basic_serializer(self.target, direction)
        return {
            "anyOf": [
                {
                    **base,
                    "properties": {
                        **base["properties"],
                        "goal_type": {"type": "string", "enum": [goal_type], INLINE_ENUM: True},
                        "metric": {"type": "string", "enum": sorted(metrics), INLINE_ENUM: True},
                    },
                }
                for goal_type, metrics in GOAL_TYPE_METRICS.items()
            ]
        }


def _event_variant(entity_type: str, operations: list[str], payload_class) -> type[serializers.Serializer]:
    external_id_required = entity_type in EXTERNAL_ID_REQUIRED and "create" not in operations
    if payload_class is None:
        payload = serializers.DictField(required=False, help_text="Not read for this operation.")
    else:
        payload_required = any(field.required for field in payload_class().fields.values())
        payload = payload_class(required=payload_required, help_text="Unknown keys are kept in the stored payload.")
    name = "".join(part.title() for part in entity_type.split("_")) + "".join(op.title() for op in operations)
    fields = {
        "entityType": serializers.ChoiceField(choices=[entity_type]),
        "operation": serializers.ChoiceField(choices=operations),
        "userId": serializers.RegexField(USER_ID_PATTERN, max_length=64),
        "externalId": serializers.CharField(
            max_length=EXTERNAL_ID_MAX_LENGTH,
            required=external_id_required,
            allow_blank=not external_id_required,
            help_text="The app's id of the record; a create without one is named by its idempotency key.",
        ),
        "occurredAt": serializers.DateTimeField(
            required=False,
            allow_null=True,
            help_text="Orders changes (default: webhook-timestamp); at most 5 minutes in the future.",
        ),
        "payload": payload,
    }
    return type(f"AppEvent{name}Serializer", (serializers.Serializer,), fields)


def _event_variants() -> list[type[serializers.Serializer]]:
    variants = []
    for entity_type, operations in ENTITY_OPERATIONS.items():
        groups: dict[tuple, list[str]] = {}
        for operation in operations:
            payload_class = PAYLOAD_SERIALIZERS.get((entity_type, operation))
            # Creates may leave externalId out, updates and deletes of addressed records may not.
            groups.setdefault((payload_class, operation == "create"), []).append(operation)
        variants += [_event_variant(entity_type, ops, payload) for (payload, _), ops in groups.items()]
    return variants


APP_EVENT_REQUEST = PolymorphicProxySerializer(
    component_name="AppEvent",
    serializers=_event_variants(),
    resource_type_field_name=None,
)
WEBHOOK_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="`malformed_json`: not a JSON object (or not acceptable JSON)."),
    401: OpenApiResponse(
        ErrorSerializer,
        description="`webhook_signature_invalid` (headers missing, wrong signature, timestamp over 5 minutes off) "
        "or `webhook_secret_not_configured`.",
    ),
    409: OpenApiResponse(ErrorSerializer, description="`idempotency_key_in_flight`: retry shortly."),
    410: OpenApiResponse(ErrorSerializer, description="`user_erased`: the user was erased under GDPR."),
    413: OpenApiResponse(ErrorSerializer, description=f"`payload_too_large`: body over {MAX_BODY_BYTES} bytes."),
    422: OpenApiResponse(
        ErrorSerializer,
        description="`validation_error` (field errors in details), `entity_not_found` (goal update/progress for "
        "an unknown externalId) or `idempotency_key_reused` (same key, different body).",
    ),
    429: OpenApiResponse(ErrorSerializer, description="`rate_limited`: over 100 events a minute for this userId."),
}
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": 255},
    OpenApiParameter.HEADER,
    required=False,
    description="At most 255 characters; default `{entityType}:{externalId}:{operation}:{occurredAt}` "
    "(without occurredAt: `webhook:{webhook-id}`). The same key with another body is refused (422).",
)


class _SignedWebhookApi(APIView):
    # The Standard Webhooks signature is the authentication; no session, no CSRF.
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []  # the raw body is verified before it is parsed
    renderer_classes = [JSONRenderer]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "POST":  # another method is 405 whatever it carries
            webhook_content_type_check(content_type=request.content_type)


class AppEventWebhookApi(_SignedWebhookApi):
    """POST /api/crm/webhooks/app-event: one app event, signed per Standard Webhooks."""

    @extend_schema(
        operation_id="webhook_app_event",
        request={"application/json": APP_EVENT_REQUEST},
        responses={202: WebhookAcceptedSerializer, **WEBHOOK_ERRORS},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        auth=WEBHOOK_SECURITY,
        description="Signed app event (see docs/sync.md). 202 on success or replay (header "
        "`Idempotent-Replayed: true`). Rules the schema states only in words: a goal's `metric` must fit "
        "its `goal_type`, `occurredAt` may be at most 5 minutes in the future.",
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
        if isinstance(result.body, str):  # already JSON (the text stored for replays)
            response = HttpResponse(result.body, status=result.status_code, content_type="application/json")
        else:
            response = Response(result.body, status=result.status_code)
        if result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


def _declared_length(request: Request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class BatchRequestSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=serializers.JSONField(),
        max_length=MAX_BATCH_EVENTS,
        help_text=f"At most {MAX_BATCH_EVENTS} events (more: 413), body at most {MAX_BATCH_BODY_BYTES} bytes. Each "
        "is an app event as the single endpoint takes it (`AppEvent`) plus an optional `idempotencyKey`; an "
        "event that is not valid gets its own error result and never fails the request.",
    )


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
        responses={
            200: BatchResponseSerializer,
            400: WEBHOOK_ERRORS[400],
            401: WEBHOOK_ERRORS[401],
            413: OpenApiResponse(ErrorSerializer, description=f"`payload_too_large`: {TOO_LARGE_MESSAGE}"),
            422: OpenApiResponse(ErrorSerializer, description="`validation_error`: no `events` list."),
        },
        auth=WEBHOOK_SECURITY,
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
