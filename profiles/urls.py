from django.urls import path

import yahealthy_crm.api  # noqa: F401 - registers the <user_id:...> path converter
from profiles import api

urlpatterns = [
    path("users", api.UserListCreateApi.as_view(), name="user-create"),
    path("users/<user_id:user_id>", api.UserDetailApi.as_view(), name="user-detail"),
    path("churn-risk", api.ChurnRiskApi.as_view(), name="churn-risk"),
]
