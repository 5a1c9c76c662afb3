"""Error codes of the sync app (the `error.code` of the one error shape)."""


class SyncErrorCode:
    SIGNATURE_INVALID = "webhook_signature_invalid"
    SECRET_NOT_CONFIGURED = "webhook_secret_not_configured"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_JSON = "malformed_json"
    VALIDATION_ERROR = "validation_error"
    ENTITY_NOT_FOUND = "entity_not_found"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_KEY_IN_FLIGHT = "idempotency_key_in_flight"
    USER_ERASED = "user_erased"
