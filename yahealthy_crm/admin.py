from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from yahealthy_crm.models import ServiceApiKey

# The package's own APIKey model is not used for authentication; only ServiceApiKey is.
admin.site.unregister(APIKey)


@admin.register(ServiceApiKey)
class ServiceApiKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "last_used_at")
    readonly_fields = ("last_used_at",)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "last_used_at")
