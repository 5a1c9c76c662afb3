from django.urls import path

from activities import api

urlpatterns = [
    path("users/<str:user_id>/activities", api.UserActivitiesApi.as_view(), name="user-activities"),
    path(
        "users/<str:user_id>/nutrition-snapshot",
        api.NutritionSnapshotApi.as_view(),
        name="user-nutrition-snapshot",
    ),
    path("users/<str:user_id>/metrics", api.UserMetricsApi.as_view(), name="user-metrics"),
]
