"""Error codes of the coaching app (the `error.code` of the one error shape)."""


class CoachingErrorCode:
    AI_CONSENT_REQUIRED = "ai_consent_required"
    MARKETING_CONSENT_REQUIRED = "marketing_consent_required"
    JOB_ALREADY_RUNNING = "job_already_running"
    CONVERSATION_NOT_FOUND = "conversation_not_found"
