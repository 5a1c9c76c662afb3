"""Links that open the coaching page as a given user (`manage.py coach_link`, tests).

The token is an end-user JWT like the app's own (`sub` = userId, `exp`), signed HS256 with
CRM_JWT_SECRET, so the REST API accepts it exactly as it accepts the app's tokens. It goes into the
URL fragment (`#token=`), which browsers never send to the server.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import jwt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from profiles.selectors import profile_get

COACH_LINK_ISSUER = "yahealthy-crm:coach_link"
COACH_LINK_MINUTES_DEFAULT = 30
COACH_LINK_MINUTES_MAX = 24 * 60


class CoachLinkError(Exception):
    """The link cannot be made (unknown user, no HS256 secret, bad lifetime); the message says why."""


def coach_link_token(*, user_id: str, minutes: int, now: dt.datetime | None = None) -> str:
    """A short-lived end-user JWT for `user_id`, signed with CRM_JWT_SECRET."""
    if not 1 <= minutes <= COACH_LINK_MINUTES_MAX:
        raise CoachLinkError(f"--minutes must be between 1 and {COACH_LINK_MINUTES_MAX}, not {minutes}.")
    if not settings.CRM_JWT_SECRET:
        raise CoachLinkError(
            "coach_link signs HS256 tokens with CRM_JWT_SECRET, which is not set: this server verifies "
            "only RS256 tokens (CRM_JWT_PUBLIC_KEY), whose private key is the app's. Set CRM_JWT_SECRET "
            "as well, or open /coach/#token=<jwt> with a token issued by the app."
        )
    issued_at = now or timezone.now()
    claims = {
        "sub": user_id,
        "iat": issued_at,
        "exp": issued_at + dt.timedelta(minutes=minutes),
        "iss": COACH_LINK_ISSUER,
    }
    # During a rotation CRM_JWT_SECRET holds "new old": links are signed with the new one.
    return jwt.encode(claims, settings.CRM_JWT_SECRET.split()[0], algorithm="HS256")


def coach_link_build(*, user_id: str, base_url: str, minutes: int = COACH_LINK_MINUTES_DEFAULT) -> str:
    """`<base_url>/coach/#token=<jwt>` for an existing CRM user (CoachLinkError otherwise)."""
    if not base_url.startswith(("http://", "https://")):
        raise CoachLinkError(f"The base URL must start with http:// or https://, not '{base_url}'.")
    if profile_get(user_id=user_id) is None:
        raise CoachLinkError(
            f"No CRM user with id '{user_id}' (unknown or erased). Create it first, e.g. with "
            "POST /api/crm/users, or pick one from the admin's user list (demo users are demo_000001, ...)."
        )
    token = coach_link_token(user_id=user_id, minutes=minutes)
    return f"{base_url.rstrip('/')}{reverse('webapp:coach')}#token={quote(token, safe='')}"
