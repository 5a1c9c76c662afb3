"""URLconf for the benchmark only: the real API plus two reference views measured the same way."""

import json

from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

# Created by bench/webhook_ingest.py, in the throw-away benchmark database only.
PROBE_TABLE = "bench_insert_probe"


@csrf_exempt
def bare_json(request):
    # Same body in, small JSON out, no database: the ceiling Django + gunicorn reach on this machine.
    data = json.loads(request.body)
    return JsonResponse({"status": "accepted", "echo": data.get("externalId")}, status=202)


@csrf_exempt
def one_insert(request):
    # The least any endpoint that keeps the event can do: parse it and INSERT it (one autocommit).
    data = json.loads(request.body)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {PROBE_TABLE} (body) VALUES (%s::jsonb) RETURNING id", [request.body.decode()])
        (row_id,) = cursor.fetchone()
    return JsonResponse({"status": "accepted", "echo": data.get("externalId"), "id": row_id}, status=202)


urlpatterns = [
    path("bench/bare", bare_json),
    path("bench/one-insert", one_insert),
    path("", include("yahealthy_crm.urls")),
]
