"""Who is calling, and what they may touch (design.md "Security model").

Every authenticated REST request carries a `Caller` as `request.user`:
- `service`: the app backend with a service API key; may act on any user (audited as actor `app`);
- `user`: an end user with a bearer JWT; may act only on their own `/users/<userId>/...`;
- `staff`: a CRM staff member with a Django session (admin, browsable API).

Cross-user access answers 404 (never 403), so an end user cannot even learn whether another user
exists. Cross-user listings (`/churn-risk`, `/audit-log/...`) are not for end users: 403.

Staff rights follow their Django permissions, as in admin: a staff session writes through the API only
with the change right on user profiles (the "CRM viewer" group only looks: 403), and only superusers
erase a user (GDPR).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rest_framework import status
from rest_framework.permissions import SAFE_METHODS, BasePermission

from yahealthy_crm.actors import ActorType
from yahealthy_crm.errors import ApplicationError, ErrorCode


class CallerKind:
    SERVICE = "service"
    USER = "user"
    STAFF = "staff"


_ACTOR_TYPES = {
    CallerKind.SERVICE: ActorType.APP,
    CallerKind.USER: ActorType.USER,
    CallerKind.STAFF: ActorType.STAFF,
}


@dataclass(frozen=True)
class Caller:
    kind: str
    # service: the key's name and prefix; user: the user id (JWT `sub`); staff: the username.
    actor_id: str
    user_id: str = ""  # end users only
    django_user: Any = field(default=None, compare=False, repr=False)  # staff only

    is_authenticated = True
    is_anonymous = False

    @property
    def is_service(self) -> bool:
        return self.kind == CallerKind.SERVICE

    @property
    def is_end_user(self) -> bool:
        return self.kind == CallerKind.USER

    @property
    def is_staff(self) -> bool:
        return self.kind == CallerKind.STAFF

    @property
    def actor_type(self) -> str:
        """The audit log's actor type for writes made by this caller."""
        return _ACTOR_TYPES[self.kind]

    def __str__(self) -> str:  # shown by the browsable API
        return f"{self.kind}:{self.actor_id}"


def not_found_error(message: str = "Not found.") -> ApplicationError:
    return ApplicationError(message, code=ErrorCode.NOT_FOUND, status_code=status.HTTP_404_NOT_FOUND)


def permission_denied_error(message: str, *, details: dict | None = None) -> ApplicationError:
    return ApplicationError(
        message, code=ErrorCode.PERMISSION_DENIED, status_code=status.HTTP_403_FORBIDDEN, details=details
    )


def user_scope_check(*, caller: Caller, user_id: str) -> None:
    """Raise 404 when `caller` is an end user asking about anyone but themselves."""
    if caller.is_end_user and caller.user_id != user_id:
        raise not_found_error("User not found.")


# The Django permission a staff session needs to write through the API (superusers have every one).
STAFF_WRITE_PERMISSION = "profiles.change_crmuserprofile"


def staff_may_write(caller: Caller) -> bool:
    return caller.django_user is not None and caller.django_user.has_perm(STAFF_WRITE_PERMISSION)


# Taking a user's data out of the CRM (CSV in admin, the GDPR export through the API) is its own right:
# the "CRM viewer" group looks at data in place but does not carry it away.
STAFF_EXPORT_PERMISSION = "profiles.export_crmuserprofile"


def export_permission_check(*, caller: Caller) -> None:
    """Staff export only with the export right (service keys export on the app's request)."""
    if caller.is_staff and not (
        caller.django_user is not None and caller.django_user.has_perm(STAFF_EXPORT_PERMISSION)
    ):
        raise permission_denied_error("Your staff account may view CRM data but not export it.")


def erase_permission_check(*, caller: Caller) -> None:
    """Only superusers erase a user among staff (service keys erase on the app's request; end users
    erase themselves, scoped by `user_scope_check`)."""
    if caller.is_staff and not (caller.django_user is not None and caller.django_user.is_superuser):
        raise permission_denied_error("Only superusers can erase a user (GDPR).")


class IsCaller(BasePermission):
    """Any authenticated caller (service key, end-user JWT or staff session); a staff session writes
    only with the change right on user profiles."""

    message = "Your staff account can view CRM data but not change it."

    def has_permission(self, request, view) -> bool:
        caller = request.user
        if not isinstance(caller, Caller):
            return False
        if caller.is_staff and request.method not in SAFE_METHODS and not staff_may_write(caller):
            self.message = IsCaller.message  # a subclass's own message is about something else
            return False
        return True


class IsServiceOrStaff(IsCaller):
    """Cross-user endpoints: service keys and staff only; end users get 403."""

    message = "This endpoint is for the app backend and CRM staff, not for end users."

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and not request.user.is_end_user
