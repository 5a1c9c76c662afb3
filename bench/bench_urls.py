"""URLconf for the benchmark only: the real API plus a bare JSON view as the baseline."""

import json

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare_json(request):
    # Same body in, small JSON out, no database: the ceiling Django + gunicorn reach on this machine.
    data = json.loads(request.body)
    return JsonResponse({"status": "accepted", "echo": data.get("externalId")}, status=202)


urlpatterns = [
    path("bench/bare", bare_json),
    path("", include("yahealthy_crm.urls")),
]
