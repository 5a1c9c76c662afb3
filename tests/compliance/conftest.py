from tests.api.support import (  # noqa: F401 - fixtures
    _jwt_settings,
    anon_client,
    client_a,
    client_b,
    profile_a,
    profile_b,
    service_client,
    service_key,
    staff_client,
    staff_user,
)
