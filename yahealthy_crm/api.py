"""Shared pieces of the REST layer: strict input serializers, envelopes, limit/offset pagination.

Responses: `{"status": "success", "data": ...}`; lists add
`"pagination": {"limit", "offset", "count", "nextOffset"}`. Errors: see `yahealthy_crm.errors`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import register_converter
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema_field
from rest_framework import serializers, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from yahealthy_crm.json_input import JsonTypedSerializer

USER_ID_REGEX = r"[A-Za-z0-9_.:@-]{1,64}"


class UserIdConverter:
    """`<user_id:user_id>` in URLs: an app user id (anything else is a JSON 404 before any query)."""

    regex = USER_ID_REGEX

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UserIdConverter, "user_id")


class JsonFirstContentNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, decided at once for what API clients almost always send: no Accept
    header, `*/*` or `application/json`, no format override, and JSON the view's first renderer.
    DRF picks the same renderer and media type after parsing the header into media types, which was
    about 2 % of a webhook's Python (docs/sync.md "Benchmark"); anything else goes to DRF."""

    def select_renderer(self, request, renderers, format_suffix=None):
        meta = request.META
        if (
            renderers
            and renderers[0].media_type == "application/json"
            and format_suffix is None
            and not meta.get("QUERY_STRING")  # where `?format=` would be
            and meta.get("HTTP_ACCEPT", "*/*") in ("*/*", "application/json")
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


# An input serializer that rejects fields it does not know (typos must not pass silently) and, like
# every JsonTypedSerializer, values of the wrong JSON type: the server takes what the schema says.
class StrictSerializer(JsonTypedSerializer):
    rejects_unknown_fields = True

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        read_only = sorted(name for name in data if name in self.fields and self.fields[name].read_only)
        errors = {name: ["Unknown field."] for name in unknown}
        errors.update({name: ["This field is read-only."] for name in read_only})
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def success(data: Any, *, http_status: int = status.HTTP_200_OK) -> Response:
    return Response({"status": "success", "data": data}, status=http_status)


def page_size_field() -> serializers.IntegerField:
    """The `limit` query parameter of every paginated list (offset or cursor)."""
    return serializers.IntegerField(
        min_value=1,
        max_value=settings.API_PAGE_SIZE_MAX,
        required=False,
        help_text=f"Page size (default {settings.API_PAGE_SIZE_DEFAULT}).",
    )


class PaginationSerializer(StrictSerializer):
    limit = page_size_field()
    offset = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, default=0, help_text="Rows to skip."
    )


# A view's query parameters are its query serializer (`extend_schema(parameters=[XParamsSerializer])`):
# the schema then states the bounds `query_params_validate` enforces. This is the plain pagination.
PAGINATION_PARAMETERS = [PaginationSerializer]


def query_params_validate(serializer_class: type[serializers.Serializer], request) -> dict:
    """Validate query parameters with an input serializer (400 with field errors when wrong)."""
    serializer = serializer_class(data=request.query_params.dict(), context={"query_params": True})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def paginated(queryset: QuerySet, *, params: dict, serializer_class: type[serializers.Serializer]) -> Response:
    """One page of `queryset` (two queries: the page and the count) in the list envelope."""
    limit = params.get("limit") or settings.API_PAGE_SIZE_DEFAULT
    offset = params.get("offset") or 0
    rows = list(queryset[offset : offset + limit])
    count = len(rows) + offset if len(rows) < limit and (rows or offset == 0) else queryset.count()
    next_offset = offset + limit if offset + limit < count else None
    return Response(
        {
            "status": "success",
            "data": serializer_class(rows, many=True).data,
            "pagination": {"limit": limit, "offset": offset, "count": count, "nextOffset": next_offset},
        }
    )


def envelope_serializer(name: str, data: serializers.Field) -> type[serializers.Serializer]:
    """An OpenAPI component for `{"status": "success", "data": <data>}`."""
    return type(
        name,
        (serializers.Serializer,),
        {"status": serializers.CharField(default="success"), "data": data},
    )


class PaginationOutputSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    count = serializers.IntegerField()
    nextOffset = serializers.IntegerField(allow_null=True)


def list_envelope_serializer(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """An OpenAPI component for the list envelope."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "status": serializers.CharField(default="success"),
            "data": item(many=True),
            "pagination": PaginationOutputSerializer(),
        },
    )


def list_example(title: str, item: dict) -> OpenApiExample:
    """An OpenAPI example of a one-item page in the list envelope."""
    return OpenApiExample(
        title,
        value={
            "status": "success",
            "data": [item],
            "pagination": {"limit": 20, "offset": 0, "count": 1, "nextOffset": None},
        },
        response_only=True,
    )


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField()


class ErrorSerializer(serializers.Serializer):
    status = serializers.CharField(default="error")
    error = ErrorDetailSerializer()


# The error responses of an endpoint under /users/<user_id>/ (scope: see yahealthy_crm.permissions).
USER_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid fields (code `validation_error`)."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, expired or invalid credentials."),
    404: OpenApiResponse(ErrorSerializer, description="No such user, or not the caller's own user."),
}


class IsoDateTimeField(serializers.DateTimeField):
    """Output only: `datetime.isoformat()` as is (offset `+00:00`, no conversion to the current time zone),
    the format of the camelCase responses (`lastActiveAt`); DRF's own field would write `Z`."""

    def to_representation(self, value):
        return None if value is None else value.isoformat()


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.Field):
    """Output only: a number written as computed, int or float (FloatField would turn 30 into 30.0)."""

    def to_representation(self, value):
        return value
