"""The end user's coaching page, `/coach/` (docs/coach.md "The coaching page").

The server renders only the page's frame: no user data, no token. The app opens
`/coach/#token=<jwt>`; the fragment never reaches the server (browsers do not send it), the page's
script keeps the token in session storage, drops it from the address bar and calls the REST API with
`Authorization: Bearer`. So the token is in no server log and no URL sent anywhere.
"""

from __future__ import annotations

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

# Only this origin's own script and style files run or load: no inline script, no inline style, no
# third-party host, and the page cannot be framed or post a form anywhere.
COACH_PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@require_safe
def coach_page(request):
    # The REST API's root, as the page's script builds its URLs from it.
    api_root = reverse("crm:user-create").removesuffix("users")
    response = render(request, "webapp/coach.html", {"api_root": api_root})
    response["Content-Security-Policy"] = COACH_PAGE_CSP
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response
