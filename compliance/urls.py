from django.urls import path

from compliance import api

urlpatterns = [
    path("users/<str:user_id>/export", api.UserExportApi.as_view(), name="user-export"),
    path("audit-log/<str:user_id>", api.AuditLogApi.as_view(), name="audit-log"),
]
