"""REST API of the AI coach: ask, insights (list, dismiss), coaching history; engagement metrics; jobs."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from coaching.coach import AskResult, coach_ask
from coaching.error_codes import CoachingErrorCode
from coaching.jobs import (
    JOB_DAILY_ENGAGEMENT,
    JOB_DAILY_INSIGHTS,
    JOB_RETENTION_OUTCOMES,
    JOB_WEEKLY_CHURN,
    JobAlreadyRunningError,
    JobTrigger,
    job_run_abandon,
    job_run_start,
)
from coaching.models import JobRun, RetentionActionSource, RetentionActionType
from coaching.retention import user_metrics_get
from coaching.retention_actions import retention_action_record, retention_outcomes_report
from coaching.selectors import (
    conversation_get_for_user,
    conversation_list,
    insight_get_for_user,
    insight_list_open,
)
from coaching.services import insight_dismiss
from coaching.tasks import (
    daily_engagement_job,
    daily_insights_job,
    retention_outcomes_job,
    weekly_churn_assessment_job,
)
from goals.api import GoalOutputSerializer
from goals.selectors import goal_list_by_ids
from profiles.selectors import profile_for_caller_get
from yahealthy_crm.api import (
    PAGINATION_PARAMETERS,
    USER_ERRORS,
    ErrorSerializer,
    IsoDateTimeField,
    NumberField,
    PaginationSerializer,
    StrictSerializer,
    envelope_serializer,
    list_envelope_serializer,
    list_example,
    paginated,
    query_params_validate,
    success,
)
from yahealthy_crm.auth import admin_key_check
from yahealthy_crm.errors import ApplicationError, ErrorCode
from yahealthy_crm.openapi import ADMIN_KEY_SECURITY
from yahealthy_crm.permissions import Caller, IsServiceOrStaff, not_found_error
from yahealthy_crm.ratelimit import AI_ASK_RATE, BULK_RATE, rate_limit_enforce

MESSAGE_MAX_CHARS = 2000
MAX_ID = 2**63 - 1


class AskInputSerializer(StrictSerializer):
    message = serializers.CharField(max_length=MESSAGE_MAX_CHARS, trim_whitespace=True)
    conversationId = serializers.UUIDField(
        required=False,
        allow_null=True,
        help_text="Continue this conversation (the `conversationId` of an earlier answer); omit or null to "
        "start a new one. Another user's or an unknown id is 404 `conversation_not_found`.",
    )

    def to_internal_value(self, data):
        # CharField would turn 42 or true into "42"/"True": the coach takes text only.
        if isinstance(data, dict) and "message" in data and not isinstance(data["message"], str):
            raise serializers.ValidationError({"message": ["Must be a string."]})
        return super().to_internal_value(data)


# Formats an AskResult; the goals it suggested come in context["suggested_goals"].
class AskOutputSerializer(serializers.Serializer):
    status = serializers.CharField(default="success")
    response = serializers.CharField(source="answer")
    toolsUsed = serializers.ListField(source="tools_used", child=serializers.CharField())
    sessionId = serializers.IntegerField(source="session.pk")
    conversationId = serializers.UUIDField(
        source="conversation_id", help_text="Send it with the next question to continue this conversation."
    )
    provider = serializers.CharField()
    fallbackReason = serializers.SerializerMethodField()
    suggestedGoals = serializers.SerializerMethodField()

    def get_fallbackReason(self, result: AskResult) -> str | None:
        return result.fallback_reason or None

    @extend_schema_field(GoalOutputSerializer(many=True))
    def get_suggestedGoals(self, result: AskResult) -> list:
        return GoalOutputSerializer(self.context["suggested_goals"], many=True).data


SEED_ASK_RESPONSE = {
    "status": "success",
    "response": "Over the last 7 days you averaged 80 g of protein per logged day (7 of 7 days logged).\n\n"
    "I suggest a protein goal of 120 g/day. I've added it as a suggested goal: accept it in the app to start "
    "tracking it. Add a palm-sized protein portion to each meal ...",
    "toolsUsed": ["get_user_nutrition_summary", "suggest_goal", "create_ai_insight"],
    "sessionId": 42,
    "conversationId": "3f0b9c4e-2a51-4c1e-9d7a-6b1f0e8a2c57",
    "provider": "offline",
    "fallbackReason": None,
    "suggestedGoals": [
        {
            "id": 9,
            "user_id": "user_123",
            "goal_type": "nutrition",
            "metric": "protein_g",
            "goal_value": 120.0,
            "goal_unit": "g",
            "start_value": None,
            "target_date": "2026-02-02",
            "priority": "medium",
            "status": "suggested",
            "progress_pct": 0.0,
            "streak_days": 0,
            "source": "ai_assistant",
            "rationale": "7-day average 80 g. Rule: max(7-day average x 1.5, 1.6 g/kg body weight), ...",
            "accepted_at": None,
            "completed_at": None,
            "created_at": "2026-01-05T19:12:00Z",
            "updated_at": "2026-01-05T19:12:00Z",
        }
    ],
}


class AskApi(APIView):
    @extend_schema(
        operation_id="users_ask",
        summary="Ask the AI coach",
        description="The coach reads the user's data through its tools, may suggest goals (status "
        "`suggested`) and store an insight, and answers. `toolsUsed` lists the tools in call order. "
        "Send the answer's `conversationId` with the next question to continue the conversation: the "
        'coach rereads its last turns (within a token budget) and resolves follow-ups such as "make it '
        '110" or "what about carbs?" against them; an unknown id or another user\'s is 404 '
        "`conversation_not_found`. "
        "`provider` is `openai` or `offline`; when the model fails or times out the offline coach "
        "answers, `fallbackReason` says why and the answer starts with a note. 10 asks per minute per "
        "user (429 with Retry-After). Users without AI-processing consent get 403 "
        "`ai_consent_required` and nothing is sent to a model.",
        request=AskInputSerializer,
        responses={
            200: AskOutputSerializer,
            **USER_ERRORS,
            403: OpenApiResponse(ErrorSerializer, description="No AI-processing consent."),
            429: OpenApiResponse(ErrorSerializer, description="More than 10 asks in a minute."),
        },
        examples=[
            OpenApiExample(
                "Seed example",
                value={"message": "I've been struggling to eat enough protein. Help me set a goal."},
                request_only=True,
            ),
            OpenApiExample(
                "Follow-up in the same conversation",
                value={"message": "Make it 110 instead.", "conversationId": "3f0b9c4e-2a51-4c1e-9d7a-6b1f0e8a2c57"},
                request_only=True,
            ),
            OpenApiExample("Answer", value=SEED_ASK_RESPONSE, response_only=True),
        ],
        tags=["coach"],
    )
    def post(self, request, user_id: str):
        caller: Caller = request.user
        profile = profile_for_caller_get(caller=caller, user_id=user_id)
        serializer = AskInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not profile.consent_ai_processing:
            raise ApplicationError(
                "This user has not consented to AI processing, so the coach cannot answer. "
                "The user can grant consent in the app's privacy settings.",
                code=CoachingErrorCode.AI_CONSENT_REQUIRED,
                status_code=status.HTTP_403_FORBIDDEN,
                details={"consent": "consent_ai_processing"},
            )
        conversation = None
        if serializer.validated_data.get("conversationId") is not None:
            conversation = conversation_get_for_user(
                user_id=user_id, conversation_id=serializer.validated_data["conversationId"]
            )
            if conversation is None:
                raise conversation_not_found_error()
        rate_limit_enforce(request, group="coaching.ask", key_value=user_id, rate=AI_ASK_RATE)
        result = coach_ask(
            profile=profile,
            message=serializer.validated_data["message"],
            requested_by=f"{caller.actor_type}:{caller.actor_id}",
            conversation=conversation,
        )
        goals = goal_list_by_ids(goal_ids=result.suggested_goal_ids)
        return Response(AskOutputSerializer(result, context={"suggested_goals": goals}).data)


class InsightOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.CharField()
    insight_type = serializers.CharField()
    title = serializers.CharField()
    body = serializers.CharField()
    recommendation = serializers.CharField()
    source = serializers.CharField()
    coaching_session_id = serializers.IntegerField(allow_null=True)
    dismissed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


INSIGHT_EXAMPLE = {
    "id": 3,
    "user_id": "user_123",
    "insight_type": "nutrition",
    "title": "Raise your protein to 120 g a day",
    "body": "Your 7-day protein average is 80 g per logged day (7 of 7 days logged); the suggested target is 120 g.",
    "recommendation": "Add a palm-sized protein portion to each meal ...",
    "source": "ai_assistant",
    "coaching_session_id": 42,
    "dismissed_at": None,
    "created_at": "2026-01-05T19:12:00Z",
}


class InsightListApi(APIView):
    @extend_schema(
        operation_id="users_insights_list",
        summary="A user's open (not dismissed) insights, newest first",
        parameters=PAGINATION_PARAMETERS,
        responses={200: list_envelope_serializer("InsightList", InsightOutputSerializer), **USER_ERRORS},
        examples=[list_example("Insights", INSIGHT_EXAMPLE)],
        tags=["coach"],
    )
    def get(self, request, user_id: str):
        params = query_params_validate(PaginationSerializer, request)
        profile_for_caller_get(caller=request.user, user_id=user_id)
        return paginated(insight_list_open(user_id=user_id), params=params, serializer_class=InsightOutputSerializer)


class InsightDismissApi(APIView):
    @extend_schema(
        operation_id="users_insights_dismiss",
        summary="Dismiss an insight (idempotent)",
        description="Dismissing twice answers 200 with the first dismissal time. Another user's insight is 404.",
        request=None,
        responses={200: envelope_serializer("InsightEnvelope", InsightOutputSerializer()), **USER_ERRORS},
        examples=[
            OpenApiExample(
                "Dismissed",
                value={"status": "success", "data": {**INSIGHT_EXAMPLE, "dismissed_at": "2026-01-06T08:00:00Z"}},
                response_only=True,
            )
        ],
        tags=["coach"],
    )
    def post(self, request, user_id: str, insight_id: int):
        caller: Caller = request.user
        profile_for_caller_get(caller=caller, user_id=user_id)
        insight = insight_get_for_user(user_id=user_id, insight_id=insight_id) if insight_id <= MAX_ID else None
        if insight is None:
            raise not_found_error("Insight not found.")
        insight = insight_dismiss(insight=insight, actor_type=caller.actor_type, actor_id=caller.actor_id)
        return success(InsightOutputSerializer(insight).data)


def conversation_not_found_error() -> ApplicationError:
    return ApplicationError(
        "Conversation not found for this user. Start a new one by asking without conversationId.",
        code=CoachingErrorCode.CONVERSATION_NOT_FOUND,
        status_code=status.HTTP_404_NOT_FOUND,
        details={"conversationId": ["Unknown conversation."]},
    )


class CoachingSessionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversationId = serializers.UUIDField(source="conversation_id")
    message = serializers.CharField()
    response = serializers.CharField()
    toolsUsed = serializers.ListField(source="tools_used", child=serializers.CharField())
    toolCalls = serializers.JSONField(source="tool_calls")
    topics = serializers.ListField(child=serializers.CharField())
    provider = serializers.CharField()
    model = serializers.CharField()
    status = serializers.CharField()
    fallbackReason = serializers.CharField(source="fallback_reason")
    summary = serializers.CharField()
    promptTokens = serializers.IntegerField(source="prompt_tokens")
    completionTokens = serializers.IntegerField(source="completion_tokens")
    latencyMs = serializers.IntegerField(source="latency_ms")
    created_at = serializers.DateTimeField()


class ConversationOutputSerializer(serializers.Serializer):
    conversationId = serializers.UUIDField(source="pk")
    startedAt = IsoDateTimeField(source="created_at")
    lastTurnAt = IsoDateTimeField(source="last_turn_at")
    turnCount = serializers.SerializerMethodField()
    turns = CoachingSessionOutputSerializer(many=True, help_text="Questions and answers, oldest first.")

    def get_turnCount(self, conversation) -> int:
        return len(conversation.turns.all())  # prefetched: no query


class CoachingHistoryParamsSerializer(PaginationSerializer):
    conversationId = serializers.UUIDField(required=False)


HISTORY_TURN_EXAMPLE = {
    "id": 42,
    "conversationId": SEED_ASK_RESPONSE["conversationId"],
    "message": "I've been struggling to eat enough protein. Help me set a goal.",
    "response": SEED_ASK_RESPONSE["response"],
    "toolsUsed": SEED_ASK_RESPONSE["toolsUsed"],
    "toolCalls": [
        {
            "name": "get_user_nutrition_summary",
            "arguments": {"days": 7},
            "ok": True,
            "summary": "7/7 days logged, averages {...}",
        }
    ],
    "topics": ["protein"],
    "provider": "offline",
    "model": "offline-planner-1",
    "status": "success",
    "fallbackReason": "",
    "summary": "",
    "promptTokens": 0,
    "completionTokens": 0,
    "latencyMs": 38,
    "created_at": "2026-01-05T19:12:00Z",
}


class CoachingHistoryApi(APIView):
    @extend_schema(
        operation_id="users_coaching_history",
        summary="A user's coaching conversations, most recent first, each with its turns (texts PII-redacted)",
        description="One item per conversation (`conversationId`, `startedAt`, `lastTurnAt`, `turnCount`, "
        "`turns` oldest first); pagination counts conversations. `conversationId` narrows the list to one "
        "conversation (another user's or an unknown id is 404 `conversation_not_found`).",
        parameters=[
            *PAGINATION_PARAMETERS,
            OpenApiParameter("conversationId", OpenApiTypes.UUID, description="Only this conversation."),
        ],
        responses={200: list_envelope_serializer("CoachingHistory", ConversationOutputSerializer), **USER_ERRORS},
        examples=[
            OpenApiExample(
                "History",
                value={
                    "status": "success",
                    "data": [
                        {
                            "conversationId": SEED_ASK_RESPONSE["conversationId"],
                            "startedAt": "2026-01-05T19:12:00+00:00",
                            "lastTurnAt": "2026-01-05T19:13:10+00:00",
                            "turnCount": 2,
                            "turns": [
                                HISTORY_TURN_EXAMPLE,
                                {
                                    **HISTORY_TURN_EXAMPLE,
                                    "id": 43,
                                    "message": "Make it 110 instead.",
                                    "response": "Done: I've changed your suggested protein goal from 120 to 110 "
                                    "g/day. ...",
                                    "toolsUsed": ["get_user_nutrition_summary", "suggest_goal"],
                                    "created_at": "2026-01-05T19:13:10Z",
                                },
                            ],
                        }
                    ],
                    "pagination": {"limit": 20, "offset": 0, "count": 1, "nextOffset": None},
                },
                response_only=True,
            )
        ],
        tags=["coach"],
    )
    def get(self, request, user_id: str):
        params = query_params_validate(CoachingHistoryParamsSerializer, request)
        profile_for_caller_get(caller=request.user, user_id=user_id)
        conversations = conversation_list(user_id=user_id, conversation_id=params.get("conversationId"))
        if params.get("conversationId") is not None and not conversations.exists():
            raise conversation_not_found_error()
        return paginated(conversations, params=params, serializer_class=ConversationOutputSerializer)


METRICS_EXAMPLE = {
    "userId": "user_123",
    "activities7d": 18,
    "activities30d": 64,
    "activeDays14d": 11,
    "currentStreakDays": 6,
    "lastActiveAt": "2026-01-05T19:12:00+00:00",
    "engagementTier": "gold",
    "engagementTierSuggested": "gold",
    "churnRisk": 0.118,
    "churnBand": "low",
    "churnFactors": {
        "model": "fitted",
        "modelVersion": 3,
        "daysInactive": 0.0,
        "typicalGapDays": 1.3,
        "activities30d": 64,
        "activeDays28d": 22,
        "drivers": [
            {
                "feature": "recency_ratio",
                "label": "time since the last log, measured in the user's own usual gaps between logs",
                "value": 0.0,
                "contribution": -1.412,
                "effect": "lowers risk",
            }
        ],
    },
    "churnRiskStored": 0.12,
    "churnAssessedAt": "2026-01-04T08:00:00+00:00",
}


class ChurnDriverSerializer(serializers.Serializer):
    feature = serializers.CharField()
    label = serializers.CharField(help_text="What the feature is, in words staff read.")
    value = NumberField(help_text="The user's value, in the feature's own units.")
    contribution = serializers.FloatField(
        allow_null=True, help_text="Log-odds against the average user: positive raises the risk (null: fallback rule)."
    )
    effect = serializers.ChoiceField(choices=["raises risk", "lowers risk"])


class ChurnFactorsSerializer(serializers.Serializer):
    model = serializers.ChoiceField(choices=["fitted", "fallback_rule"], help_text="docs/retention.md")
    modelVersion = serializers.IntegerField(allow_null=True)
    daysInactive = NumberField()
    typicalGapDays = NumberField(help_text="The user's usual gap between logging days.")
    activities30d = serializers.IntegerField()
    activeDays28d = serializers.IntegerField()
    drivers = ChurnDriverSerializer(many=True, help_text="The top factors, strongest first.")


class UserMetricsSerializer(serializers.Serializer):
    userId = serializers.CharField(source="user_id")
    activities7d = serializers.IntegerField(source="activities_7d")
    activities30d = serializers.IntegerField(source="activities_30d")
    activeDays14d = serializers.IntegerField(source="active_days_14d")
    currentStreakDays = serializers.IntegerField(source="current_streak_days")
    lastActiveAt = IsoDateTimeField(source="last_active_at", allow_null=True)
    engagementTier = serializers.CharField(source="engagement_tier")
    engagementTierSuggested = serializers.CharField(source="engagement_tier_suggested")
    churnRisk = serializers.FloatField(source="churn_risk", help_text="Probability of no activity in the next 14 days.")
    churnBand = serializers.CharField(source="churn_band", help_text="low < 0.5 <= medium < 0.75 <= high")
    churnFactors = ChurnFactorsSerializer(source="churn_factors")
    churnRiskStored = serializers.FloatField(source="churn_risk_stored")
    churnAssessedAt = IsoDateTimeField(source="churn_assessed_at", allow_null=True)


class UserMetricsApi(APIView):
    @extend_schema(
        operation_id="users_metrics",
        summary="Engagement metrics: activity counts, streak, last active, tier and churn risk",
        description="`churnRisk` and `churnFactors` are computed live; `churnRiskStored` is the value "
        "of the last weekly assessment (what /churn-risk lists).",
        responses={200: envelope_serializer("UserMetricsEnvelope", UserMetricsSerializer()), **USER_ERRORS},
        examples=[OpenApiExample("Metrics", value={"status": "success", "data": METRICS_EXAMPLE})],
        tags=["engagement"],
    )
    def get(self, request, user_id: str):
        profile = profile_for_caller_get(caller=request.user, user_id=user_id)
        return success(UserMetricsSerializer(user_metrics_get(profile=profile)).data)


# --- Job endpoints (seed: "Background Jobs"): operators trigger the Celery jobs with X-Admin-Key ---

JOBS = {
    JOB_DAILY_INSIGHTS: daily_insights_job,
    JOB_WEEKLY_CHURN: weekly_churn_assessment_job,
    JOB_DAILY_ENGAGEMENT: daily_engagement_job,
    JOB_RETENTION_OUTCOMES: retention_outcomes_job,
}
JOB_PARAMETER = OpenApiParameter("job", str, OpenApiParameter.PATH, enum=list(JOBS), description="The job to run.")


class JobTriggerView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="jobs_trigger",
        summary="Run a background job now (daily-insights, assess-churn, daily-engagement, retention-outcomes)",
        description="Starts a JobRun (status `running`) and queues the task that executes it; `runId` is "
        "for `GET /api/crm/jobs/<runId>`. While a run of the same job is going, a second trigger answers "
        "409 `job_already_running` with the running run's id and queues nothing.",
        parameters=[JOB_PARAMETER],
        auth=ADMIN_KEY_SECURITY,
        request=None,
        responses={
            202: inline_serializer(
                "JobAccepted",
                {
                    "status": serializers.CharField(),
                    "job": serializers.CharField(),
                    "taskId": serializers.CharField(),
                    "runId": serializers.IntegerField(),
                },
            ),
            401: OpenApiResponse(ErrorSerializer, description="Missing or wrong X-Admin-Key (or none configured)."),
            404: OpenApiResponse(ErrorSerializer, description="Unknown job."),
            409: OpenApiResponse(ErrorSerializer, description="The job is running (details.runId)."),
            405: OpenApiResponse(ErrorSerializer, description="A number in place of the job is a run (GET only)."),
            429: OpenApiResponse(ErrorSerializer, description="Over 1000 job triggers an hour."),
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
        try:
            run = job_run_start(job=job, trigger=JobTrigger.API)
        except JobAlreadyRunningError as exc:
            run_id = exc.run.pk if exc.run else None
            raise ApplicationError(
                f"Job '{job}' is already running (run {run_id}); it was not started again.",
                code=CoachingErrorCode.JOB_ALREADY_RUNNING,
                status_code=status.HTTP_409_CONFLICT,
                details={"runId": run_id},
            ) from exc
        try:
            result = task.delay(run_id=run.pk)
        except Exception as exc:
            job_run_abandon(run=run, error=f"could not queue the task: {exc}")
            raise
        return Response(
            {"status": "accepted", "job": job, "taskId": result.id, "runId": run.pk}, status=status.HTTP_202_ACCEPTED
        )


class JobRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job = serializers.CharField()
    trigger = serializers.CharField()
    status = serializers.CharField()
    startedAt = IsoDateTimeField(source="started_at")
    finishedAt = IsoDateTimeField(source="finished_at", allow_null=True)
    considered = serializers.IntegerField()
    processed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    error = serializers.CharField()
    details = serializers.JSONField()


class JobRunView(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="jobs_run_status",
        summary="A job run's status and counts",
        auth=ADMIN_KEY_SECURITY,
        responses={
            200: JobRunSerializer,
            401: ErrorSerializer,
            404: ErrorSerializer,
            405: OpenApiResponse(ErrorSerializer, description="A job name in place of the run id is a trigger (POST)."),
        },
        examples=[
            OpenApiExample(
                "Finished",
                value={
                    "id": 12,
                    "job": "daily-insights",
                    "trigger": "api",
                    "status": "succeeded",
                    "startedAt": "2026-01-05T06:00:00+00:00",
                    "finishedAt": "2026-01-05T06:00:41+00:00",
                    "considered": 120,
                    "processed": 118,
                    "skipped": 1,
                    "failed": 1,
                    "error": "",
                    "details": {"failures": [{"userId": "user_9", "error": "..."}]},
                },
                response_only=True,
            )
        ],
    )
    def get(self, request, run_id: int):
        admin_key_check(request)
        run = JobRun.objects.filter(pk=run_id).first() if run_id <= MAX_ID else None
        if run is None:
            raise not_found_error("Job run not found.")
        return Response(JobRunSerializer(run).data)


# --- Retention actions and outcomes (docs/retention.md) -----------------------------------------------


class RetentionActionInputSerializer(StrictSerializer):
    actionType = serializers.ChoiceField(choices=RetentionActionType.choices)


class RetentionActionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    userId = serializers.CharField(source="user_id")
    actionType = serializers.CharField(source="action_type")
    source = serializers.CharField()
    actorId = serializers.CharField(source="actor_id")
    insightId = serializers.IntegerField(source="insight_id", allow_null=True)
    churnRisk = serializers.FloatField(source="churn_risk")
    churnBand = serializers.CharField(source="churn_band")
    drivers = serializers.JSONField()
    createdAt = IsoDateTimeField(source="created_at")
    outcomeDueAt = IsoDateTimeField(source="outcome_due_at")
    returned = serializers.BooleanField(allow_null=True)
    returnedAt = IsoDateTimeField(source="returned_at", allow_null=True)


class RetentionActionCreateApi(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        operation_id="users_retention_actions_create",
        summary="Record a retention action taken for a user (e.g. a staff call)",
        description="Stored with the user's churn risk, band and drivers now; its outcome (did the user "
        "come back within 14 days) is set by the daily outcomes job. `reminder` and `staff_call` reach "
        "the user outside the app and need marketing consent (403 `marketing_consent_required`). Not for "
        "end users (403).",
        request=RetentionActionInputSerializer,
        responses={
            201: envelope_serializer("RetentionActionEnvelope", RetentionActionSerializer()),
            **USER_ERRORS,
            403: OpenApiResponse(ErrorSerializer, description="End user, or no marketing consent."),
        },
        examples=[OpenApiExample("Staff call", value={"actionType": "staff_call"}, request_only=True)],
        tags=["engagement"],
    )
    def post(self, request, user_id: str):
        caller: Caller = request.user
        profile = profile_for_caller_get(caller=caller, user_id=user_id)
        serializer = RetentionActionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        action = retention_action_record(
            profile=profile,
            action_type=serializer.validated_data["actionType"],
            source=RetentionActionSource.STAFF,
            actor_type=caller.actor_type,
            actor_id=caller.actor_id,
        )
        return success(RetentionActionSerializer(action).data, http_status=status.HTTP_201_CREATED)


class _ControlGroupSerializer(serializers.Serializer):
    users = serializers.IntegerField()
    returned = serializers.IntegerField()
    returnRate = serializers.FloatField(allow_null=True)


class _ActionTypeOutcomeSerializer(serializers.Serializer):
    actionType = serializers.ChoiceField(choices=RetentionActionType.choices)
    actions = serializers.IntegerField()
    pending = serializers.IntegerField()
    decided = serializers.IntegerField()
    returned = serializers.IntegerField()
    returnRate = serializers.FloatField(allow_null=True, help_text="returned / decided; null before any is decided")
    control = _ControlGroupSerializer()
    lift = serializers.FloatField(allow_null=True, help_text="returnRate - control.returnRate")


class RetentionOutcomesSerializer(serializers.Serializer):
    """Documents coaching.retention_actions.retention_outcomes_report's result, returned as is."""

    windowDays = serializers.IntegerField()
    actionTypes = _ActionTypeOutcomeSerializer(many=True)


class RetentionOutcomesApi(APIView):
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        operation_id="retention_outcomes",
        summary="Return rate per retention action type against untreated users of the same band",
        description="Per action type (job and staff actions): actions, pending (window not over), decided, "
        "returned (any activity within 14 days), return rate; `control`: users scored in the same band in "
        "the same week who got no action, and how many of them came back within 14 days; `lift` = return "
        "rate - control return rate. Not for end users (403).",
        responses={
            200: envelope_serializer("RetentionOutcomesResponse", RetentionOutcomesSerializer()),
            401: ErrorSerializer,
            403: ErrorSerializer,
        },
        examples=[
            OpenApiExample(
                "Report",
                value={
                    "status": "success",
                    "data": {
                        "windowDays": 14,
                        "actionTypes": [
                            {
                                "actionType": "streak_restart",
                                "actions": 40,
                                "pending": 10,
                                "decided": 30,
                                "returned": 12,
                                "returnRate": 0.4,
                                "control": {"users": 200, "returned": 50, "returnRate": 0.25},
                                "lift": 0.15,
                            }
                        ],
                    },
                },
                response_only=True,
            )
        ],
        tags=["engagement"],
    )
    def get(self, request):
        return success(retention_outcomes_report())
