"""The OpenAPI schema says exactly what the server accepts and answers (drf-spectacular, one place).

- `CrmAutoSchema` (DEFAULT_SCHEMA_CLASS) maps input fields the way `yahealthy_crm.api.StrictSerializer`
  and `yahealthy_crm.json_input` judge them: decimals are JSON numbers with their bounds, strings
  cannot hold NUL characters (nor be blank where DRF trims them to ""), strict input serializers
  allow no other properties.
- `error_responses_postprocess` (POSTPROCESSING_HOOKS) gives every operation the error answers it
  can give, each with the one error body, and adds the security schemes that are not DRF
  authentication classes (the job endpoints' X-Admin-Key, the webhooks' Standard Webhooks headers).

Request bodies are JSON only: the REST API's one parser is `yahealthy_crm.json_input.StrictJSONParser`.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

# Strings the server stores: no NUL character (PostgreSQL refuses it); non-blank ones also hold a
# character that is not whitespace (DRF trims whitespace and then finds the field blank).
TEXT_PATTERN = r"^[^\x00]+$"  # "" is offered separately (drf-spectacular adds it for allow_blank)
NON_BLANK_TEXT_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"
# Fields whose own validators already say which strings they take (their pattern or format).
_FORMATTED_STRING_FIELDS = (
    serializers.RegexField,
    serializers.EmailField,
    serializers.URLField,
    serializers.SlugField,
    serializers.UUIDField,
    serializers.IPAddressField,
)
_META_KEYS = ("nullable", "description", "title", "default", "readOnly", "writeOnly", "deprecated")

ADMIN_KEY_SCHEME = "AdminKey"
WEBHOOK_SCHEMES = ("WebhookId", "WebhookTimestamp", "WebhookSignature")
# The security requirement of the job endpoints and of the signed webhooks (all three headers at once).
ADMIN_KEY_SECURITY = [{ADMIN_KEY_SCHEME: []}]
WEBHOOK_SECURITY = [{name: [] for name in WEBHOOK_SCHEMES}]

SECURITY_SCHEMES = {
    ADMIN_KEY_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Admin-Key",
        "description": "Job endpoints: the operator key, equal to the server's CRM_ADMIN_KEY.",
    },
    "WebhookId": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-id",
        "description": "Standard Webhooks message id (stable across the sender's retries).",
    },
    "WebhookTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-timestamp",
        "description": "Standard Webhooks: Unix seconds, at most 5 minutes from the server's clock.",
    },
    "WebhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": 'Standard Webhooks: `v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">` '
        "with CRM_WEBHOOK_SECRET (docs/sync.md shows the Python that signs).",
    },
}

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error body (yahealthy_crm/errors.py); `code` is listed in docs/api.md.",
    "properties": {
        "status": {"type": "string", "enum": ["error"]},
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "What went wrong and what to do about it."},
                "details": {"description": "Field errors (`{field: [messages]}`) or facts about the error."},
            },
            "required": ["code", "message", "details"],
        },
    },
    "required": ["status", "error"],
}
# What each error status means for any operation; the operations' own descriptions win.
ERROR_DESCRIPTIONS = {
    "400": "Invalid request: `validation_error` (field errors in details) or `malformed_request` (the body "
    "is not acceptable JSON: syntax, NaN/Infinity, NUL characters, unpaired surrogates, nesting).",
    "401": "Missing, malformed, expired or revoked credentials.",
    "403": "The caller may not do this (end users on staff endpoints, staff writes without the CSRF token).",
    "404": "No such resource, or not the caller's own.",
    "406": "The Accept header excludes application/json.",
    "413": "The request body is too large (`payload_too_large`).",
    "415": "The request body is not `application/json` (UTF-8): `unsupported_media_type`.",
    "503": "The database is briefly unavailable (`service_unavailable`, Retry-After: 1).",
}
_UNSAFE_METHODS = {"post", "put", "patch", "delete"}
USER_ID_EXAMPLE = "user_123"


def _meta(schema: dict) -> dict:
    return {key: schema[key] for key in _META_KEYS if key in schema}


class CrmAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema with input fields mapped as the strict serializers validate them."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or not isinstance(schema, dict):
            return schema
        if isinstance(field, serializers.DecimalField):
            # A JSON number (StrictSerializer refuses strings), bounded before rounding.
            number = {"type": "number", **_meta(schema)}
            if field.min_value is not None:
                number["minimum"] = float(field.min_value)
            if field.max_value is not None:
                number["maximum"] = float(field.max_value)
            return number
        if (
            isinstance(field, serializers.CharField)
            and not isinstance(field, _FORMATTED_STRING_FIELDS)
            and "pattern" not in schema
            and "format" not in schema
        ):
            blank_refused = field.trim_whitespace and not field.allow_blank
            schema["pattern"] = NON_BLANK_TEXT_PATTERN if blank_refused else TEXT_PATTERN
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request" and getattr(serializer, "rejects_unknown_fields", False):
            schema["additionalProperties"] = False  # yahealthy_crm.api.StrictSerializer
        return schema


def _resolved(result: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = result["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _error_response(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }


def _statuses_for(path: str, method: str, operation: dict) -> list[str]:
    """The error statuses any operation of this shape can answer (besides its own declared ones)."""
    statuses = ["406", "503"]
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if has_body or any(parameter["in"] == "query" for parameter in parameters):
        statuses.append("400")
    if operation.get("security"):
        statuses.append("401")
        uses_session = any("StaffSession" in requirement for requirement in operation["security"])
        if uses_session and method in _UNSAFE_METHODS:
            statuses.append("403")  # CSRF
    if "{" in path:
        statuses.append("404")
    if has_body:
        statuses += ["413", "415"]
    return statuses


_HIDDEN_ENUM = "x-single-value-enum"
# Marks an enum a schema extension built for one branch (goal creation's metrics per goal type): it
# stays inline, where drf-spectacular would make a component of it with a hashed name.
INLINE_ENUM = "x-inline-enum"


def _single_value_enums_walk(node, *, source: str, target: str) -> None:
    if isinstance(node, dict):
        hiding = source == "enum"
        inline = node.pop(INLINE_ENUM, False) if hiding else True  # everything hidden comes back
        if isinstance(node.get(source), list) and (len(node[source]) == 1 or inline):
            node[target] = node.pop(source)
        for value in node.values():
            _single_value_enums_walk(value, source=source, target=target)
    elif isinstance(node, list):
        for value in node:
            _single_value_enums_walk(value, source=source, target=target)


def single_value_enums_hide(result, generator, request, public):
    """POSTPROCESSING_HOOKS, before drf-spectacular's enum hook: a one-value enum (the `entityType` of
    one webhook event variant) stays inline instead of becoming a component with a hashed name."""
    _single_value_enums_walk(result.get("components", {}), source="enum", target=_HIDDEN_ENUM)
    return result


def error_responses_postprocess(result, generator, request, public):
    """POSTPROCESSING_HOOKS: every API operation lists every error status it can answer, with the
    error body; the non-DRF security schemes are defined; operations without security say so."""
    _single_value_enums_walk(result.get("components", {}), source=_HIDDEN_ENUM, target="enum")
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path, item in result.get("paths", {}).items():
        if not path.startswith("/api/crm/"):
            continue
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "user_id":
                    parameter.setdefault("example", USER_ID_EXAMPLE)  # the id of every example body
                if parameter["in"] == "path" and parameter.get("schema", {}).get("type") == "integer":
                    parameter["schema"].setdefault("minimum", 0)  # Django's <int:...> matches digits only
            body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body_schema and {"oneOf", "anyOf"} & set(_resolved(result, body_schema)):
                operation["requestBody"]["required"] = True  # every variant has required fields
            responses = operation.setdefault("responses", {})
            for status in _statuses_for(path, method, operation):
                if status not in responses:
                    responses[status] = _error_response(ERROR_DESCRIPTIONS[status])
                elif "content" not in responses[status]:
                    responses[status]["content"] = _error_response("")["content"]
            operation["responses"] = dict(sorted(responses.items()))
    return result
