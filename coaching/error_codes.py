"""Error codes of the coaching app (the `error.code` of the one error shape)."""


class CoachingErrorCode:
    AI_CONSENT_REQUIRED = "ai_consent_required"
