"""The admin's login view behind a throttle: password guessing against staff accounts is slowed down.

Attempts are counted per client address and per username (so neither many addresses against one
account nor one address against many accounts gets far). A throttled attempt is not checked at all
and answers the login page again with status 429, Retry-After and a message saying when to retry.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from yahealthy_crm.ratelimit import ADMIN_LOGIN_ADDRESS_RATE, ADMIN_LOGIN_USERNAME_RATE, rate_limit_take


def _login_attempt_allowed(request) -> int:
    """0 when this attempt may be checked, else the seconds until the next one may."""
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    username = (request.POST.get("username") or "").strip().lower()[:150]
    grants = [rate_limit_take(group="admin-login-address", key_value=address, rate=ADMIN_LOGIN_ADDRESS_RATE)]
    if username:
        grants.append(rate_limit_take(group="admin-login-username", key_value=username, rate=ADMIN_LOGIN_USERNAME_RATE))
    refused = [grant.retry_after_s for grant in grants if not grant.allowed]
    return max(refused) if refused else 0


class _ThrottledLoginForm(AdminAuthenticationForm):
    """The login form showing why this attempt was refused; it never checks the password."""

    def __init__(self, request, *, username: str, message: str):
        # Bound (so the message shows as a form error) to placeholders: nothing here is authenticated.
        super().__init__(request, data={"username": username, "password": "-"})
        self.message = message

    def clean(self):
        raise ValidationError(self.message, code="throttled")


@csrf_protect
@never_cache
def admin_login(request, extra_context=None):
    if request.method == "POST":
        retry_after_s = _login_attempt_allowed(request)
        if retry_after_s:
            form = _ThrottledLoginForm(
                request,
                username=request.POST.get("username", "")[:150],
                message=f"Too many login attempts. Try again in {retry_after_s} seconds.",
            )
            context = {
                **admin.site.each_context(request),
                "title": "Log in",
                "subtitle": None,
                "app_path": request.get_full_path(),
                "form": form,
                REDIRECT_FIELD_NAME: request.GET.get(REDIRECT_FIELD_NAME, ""),
            }
            response = TemplateResponse(request, "admin/login.html", context, status=429)
            response["Retry-After"] = str(retry_after_s)
            return response
    return admin.site.login(request, extra_context)
