"""Error codes of the profiles app (the `error.code` of the one error shape)."""


class ProfileErrorCode:
    USER_EXISTS = "user_exists"
    USER_ERASED = "user_erased"
    FIELD_VERIFIED = "field_verified_by_staff"
