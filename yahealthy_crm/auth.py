"""REST authentication (design.md "Security model"): service API keys, end-user JWTs, staff sessions.

Each class returns `(Caller, credential)`; see `yahealthy_crm.permissions` for what callers may do.
Bad credentials are always 401 with the one error shape, never a fallback to anonymous.
"""

from __future__ import annotations

import hmac
import re

import jwt
from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, status

from yahealthy_crm.errors import ApplicationError, ErrorCode
from yahealthy_crm.models import ServiceApiKey
from yahealthy_crm.permissions import Caller, CallerKind

JWT_LEEWAY_S = 30
_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)
# Write last_used_at at most once per minute per key: one UPDATE per request would serialise a
# busy app backend on a single row.
LAST_USED_RESOLUTION_S = 60


def _authorization(request, scheme: str) -> str | None:
    """The credential after `<scheme> ` in the Authorization header, None for another scheme."""
    header = authentication.get_authorization_header(request).decode("latin-1")
    found, _, credential = header.partition(" ")
    if found.lower() != scheme.lower():
        return None
    credential = credential.strip()
    if not credential or " " in credential:
        raise exceptions.AuthenticationFailed(f"Malformed {scheme} Authorization header.")
    return credential


class ServiceApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>`: the app backend. May act on any user."""

    keyword = "Api-Key"

    def authenticate(self, request):
        key = _authorization(request, self.keyword)
        if key is None:
            return None
        try:
            api_key = ServiceApiKey.objects.get_from_key(key)
        except ServiceApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.") from None
        now = timezone.now()
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("Expired API key.")
        if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > LAST_USED_RESOLUTION_S:
            ServiceApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return Caller(kind=CallerKind.SERVICE, actor_id=f"{api_key.name}:{api_key.prefix}"), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


def _jwt_keys() -> list[tuple[str, str]]:
    """(key, algorithm) pairs that may verify a token. Each setting may hold more than one key while
    it is rotated (README "Operating"): HS256 secrets separated by spaces, RS256 PEM blocks one after
    the other."""
    keys = [(pem, "RS256") for pem in _PEM_BLOCK.findall(settings.CRM_JWT_PUBLIC_KEY or "")]
    if settings.CRM_JWT_PUBLIC_KEY and not keys:
        keys.append((settings.CRM_JWT_PUBLIC_KEY, "RS256"))  # let PyJWT say what is wrong with it
    keys += [(secret, "HS256") for secret in (settings.CRM_JWT_SECRET or "").split()]
    return keys


def jwt_decode(token: str) -> dict:
    """Verify an app-issued JWT: HS256 with CRM_JWT_SECRET or RS256 with CRM_JWT_PUBLIC_KEY."""
    keys = _jwt_keys()
    if not keys:
        raise exceptions.AuthenticationFailed("Bearer tokens are not configured on this server.")
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        raise exceptions.AuthenticationFailed("Malformed bearer token.") from None
    candidates = [key for key, alg in keys if alg == algorithm]
    if not candidates:
        raise exceptions.AuthenticationFailed("Unsupported token algorithm.")
    for key in candidates:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                options={"require": ["exp", "sub"]},
                leeway=JWT_LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:  # the signature verified: this is the key, the token is old
            raise exceptions.AuthenticationFailed("The bearer token has expired.") from None
        except jwt.InvalidSignatureError:
            continue  # maybe the other key of a rotation
        except jwt.PyJWTError:
            break
    raise exceptions.AuthenticationFailed("Invalid bearer token.")


class JwtAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <JWT>` issued by the app: an end user (`sub` = userId)."""

    keyword = "Bearer"

    def authenticate(self, request):
        token = _authorization(request, self.keyword)
        if token is None:
            return None
        claims = jwt_decode(token)
        user_id = claims["sub"]
        if not isinstance(user_id, str) or not 0 < len(user_id) <= 64:
            raise exceptions.AuthenticationFailed("Invalid bearer token subject.")
        return Caller(kind=CallerKind.USER, actor_id=user_id, user_id=user_id), claims

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """Django session of an active staff member (admin, browsable API), with CSRF on writes.

    Last in the chain: an Authorization header neither scheme above took (`Basic ...`, a bare token)
    is refused here rather than ignored, so a wrong credential is never covered by a session."""

    def authenticate(self, request):
        if authentication.get_authorization_header(request).strip():
            raise exceptions.AuthenticationFailed(
                "Unsupported Authorization header: use `Api-Key <key>` or `Bearer <JWT>`, or no header "
                "with a staff session."
            )
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not (user.is_active and user.is_staff):
            return None
        return Caller(kind=CallerKind.STAFF, actor_id=user.get_username(), django_user=user), None


API_AUTHENTICATION_CLASSES = [ServiceApiKeyAuthentication, JwtAuthentication, StaffSessionAuthentication]


class ServiceApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ServiceApiKeyAuthentication
    name = "ServiceApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Service key of the app backend: `Authorization: Api-Key <key>` "
            "(create with `manage.py create_api_key <name>`). May act on any user.",
        }


class JwtScheme(OpenApiAuthenticationExtension):
    target_class = JwtAuthentication
    name = "UserJwt"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "End-user token issued by the app (HS256 or RS256, `exp` required, "
            "`sub` = userId). Only the caller's own /users/<userId>/... is reachable.",
        }


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = StaffSessionAuthentication
    name = "StaffSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "CRM staff logged in through /admin/ (writes need the CSRF token).",
        }


def admin_key_check(request) -> None:
    """Job endpoints: the X-Admin-Key header must equal CRM_ADMIN_KEY (compared in constant time)."""
    configured = settings.CRM_ADMIN_KEY
    given = request.headers.get("X-Admin-Key", "")
    if not configured:
        raise ApplicationError(
            "Job endpoints are disabled: set CRM_ADMIN_KEY on the server.",
            code=ErrorCode.AUTHENTICATION_FAILED,
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    # Constant-time comparison: the key must not leak through response timing.
    if not hmac.compare_digest(given.encode(), configured.encode()):
        raise ApplicationError(
            "Missing or wrong X-Admin-Key header.",
            code=ErrorCode.AUTHENTICATION_FAILED,
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
