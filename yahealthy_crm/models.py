from django.db import models
from rest_framework_api_key.models import AbstractAPIKey, APIKeyManager


class ServiceApiKey(AbstractAPIKey):
    """A service API key for the app backend (`Authorization: Api-Key <prefix>.<secret>`).

    Stored as a SHA-512 hash by djangorestframework-api-key; the clear key is shown once, when it is
    created (`manage.py create_api_key <name>` or admin). Revoking is permanent.
    """

    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = APIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        db_table = "crm_service_api_keys"
        verbose_name = "service API key"
        verbose_name_plural = "service API keys"
