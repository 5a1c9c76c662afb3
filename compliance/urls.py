from django.urls import path

import yahealthy_crm.api  # noqa: F401 - registers the <user_id:...> path converter
from compliance import api

urlpatterns = [
    path("users/<user_id:user_id>/export", api.UserExportApi.as_view(), name="user-export"),
    path("audit-log/<user_id:user_id>", api.AuditLogApi.as_view(), name="audit-log"),
]
