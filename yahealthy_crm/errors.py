"""One application error type, one exception handler, one JSON error shape.

Every API failure answers `{"status": "error", "error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, JsonResponse
from django.views import defaults
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ErrorCode:
    VALIDATION_ERROR = "validation_error"
    MALFORMED_REQUEST = "malformed_request"
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    GONE = "gone"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNPROCESSABLE = "unprocessable_entity"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_ERROR = "internal_error"


class ApplicationError(Exception):
    """Raised by services and views for an expected failure the caller should read."""

    def __init__(
        self,
        message: str,
        *,
        code: str = ErrorCode.VALIDATION_ERROR,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        details: dict | list | None = None,
        headers: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.details = details or {}
        self.headers = headers or {}


class RateLimitedError(ApplicationError):
    def __init__(self, retry_after_s: float, message: str = "Too many requests; slow down.") -> None:
        retry_after = max(1, math.ceil(retry_after_s))
        super().__init__(
            message,
            code=ErrorCode.RATE_LIMITED,
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            details={"retryAfterSeconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


def error_body(code: str, message: str, details=None) -> dict:
    return {"status": "error", "error": {"code": code, "message": message, "details": details or {}}}


_DRF_CODES = {
    exceptions.ParseError: (ErrorCode.MALFORMED_REQUEST, None),
    exceptions.NotAuthenticated: (ErrorCode.NOT_AUTHENTICATED, None),
    exceptions.AuthenticationFailed: (ErrorCode.AUTHENTICATION_FAILED, None),
    exceptions.PermissionDenied: (ErrorCode.PERMISSION_DENIED, None),
    exceptions.NotFound: (ErrorCode.NOT_FOUND, None),
    exceptions.MethodNotAllowed: (ErrorCode.METHOD_NOT_ALLOWED, None),
    exceptions.UnsupportedMediaType: (ErrorCode.UNSUPPORTED_MEDIA_TYPE, None),
    exceptions.NotAcceptable: (ErrorCode.MALFORMED_REQUEST, None),
    exceptions.Throttled: (ErrorCode.RATE_LIMITED, None),
}


def api_exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: map every exception to the one error shape (never HTML, never a trace)."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code, headers=exc.headers)
    if isinstance(exc, Ratelimited):
        return Response(
            error_body(ErrorCode.RATE_LIMITED, "Too many requests; slow down.", {"retryAfterSeconds": 60}),
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": "60"},
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body(ErrorCode.PAYLOAD_TOO_LARGE, "The request body is too large."),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ValidationError):
        return Response(
            error_body(ErrorCode.VALIDATION_ERROR, "The request has invalid fields.", exc.detail),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.APIException):
        code = next((c for klass, (c, _) in _DRF_CODES.items() if isinstance(exc, klass)), ErrorCode.MALFORMED_REQUEST)
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.Throttled) and exc.wait:
            headers["Retry-After"] = str(math.ceil(exc.wait))
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return Response(error_body(code, str(detail)), status=exc.status_code, headers=headers)

    if isinstance(exc, InterfaceError | DatabaseOperationalError):
        # A dropped database connection (no per-request health check: CONN_HEALTH_CHECKS is off).
        # Django closes the unusable connection when the request ends; the next request reconnects.
        logger.warning("database unavailable: %s", exc)
        return Response(
            error_body(ErrorCode.SERVICE_UNAVAILABLE, "The database is briefly unavailable; retry in a second."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )
    logger.exception("unhandled API error", exc_info=exc)
    return Response(
        error_body(ErrorCode.INTERNAL_ERROR, "Something went wrong on our side; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _is_api_request(request) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def json_not_found(request, exception=None):
    """handler404: API clients get the JSON error shape; admin users keep Django's page."""
    if _is_api_request(request):
        return JsonResponse(error_body(ErrorCode.NOT_FOUND, "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def json_server_error(request):
    if _is_api_request(request):
        return JsonResponse(
            error_body(ErrorCode.INTERNAL_ERROR, "Something went wrong on our side; it has been logged."),
            status=500,
        )
    return defaults.server_error(request)
