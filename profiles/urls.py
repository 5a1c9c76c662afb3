from django.urls import path

from profiles import api

urlpatterns = [
    path("users", api.UserCreateApi.as_view(), name="user-create"),
    path("users/<str:user_id>", api.UserDetailApi.as_view(), name="user-detail"),
    path("churn-risk", api.ChurnRiskApi.as_view(), name="churn-risk"),
]
