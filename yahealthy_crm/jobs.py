"""Job endpoints (seed: "Background Jobs"): operators trigger the Celery jobs with X-Admin-Key."""

from __future__ import annotations

import hmac

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from coaching.tasks import daily_insights_job
from profiles.tasks import weekly_churn_assessment_job
from yahealthy_crm.errors import ApplicationError, ErrorCode
from yahealthy_crm.ratelimit import BULK_RATE, rate_limit_enforce

JOBS = {"daily-insights": daily_insights_job, "assess-churn": weekly_churn_assessment_job}


def admin_key_check(request) -> None:
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


class JobTriggerView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="jobs_trigger",
        summary="Run a background job now (daily-insights or assess-churn)",
        parameters=[OpenApiParameter("X-Admin-Key", str, OpenApiParameter.HEADER, required=True)],
        request=None,
        responses={
            202: inline_serializer(
                "JobAccepted",
                {"status": serializers.CharField(), "job": serializers.CharField(), "taskId": serializers.CharField()},
            )
        },
    )
    def post(self, request, job: str):
        admin_key_check(request)
        rate_limit_enforce(request, group="jobs", key_value="admin", rate=BULK_RATE)
        task = JOBS.get(job)
        if task is None:
            raise ApplicationError(
                f"Unknown job '{job}'. Known jobs: {', '.join(JOBS)}.",
                code=ErrorCode.NOT_FOUND,
                status_code=status.HTTP_404_NOT_FOUND,
            )
        result = task.delay()
        return Response({"status": "accepted", "job": job, "taskId": result.id}, status=status.HTTP_202_ACCEPTED)
