"""Readiness report for /healthz: database, pgvector and broker, 503 when one is down."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from kombu import Connection


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    return {"ok": True, "version": version}


def _check_pgvector() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return {"ok": False, "error": "the vector extension is not installed (run migrations)"}
    return {"ok": True, "version": row[0]}


def _check_broker() -> dict:
    broker_url = settings.CELERY_BROKER_URL
    with Connection(broker_url, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        transport = conn.transport_cls
    return {"ok": True, "transport": transport}


CHECKS = {"database": _check_database, "pgvector": _check_pgvector, "broker": _check_broker}


def healthz(request):
    report: dict = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            result = check()
        except Exception as exc:  # a failing dependency is reported, never raised
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        result["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
        report[name] = result
    healthy = all(result["ok"] for result in report.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": report}, status=200 if healthy else 503)
