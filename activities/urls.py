from django.urls import path

import yahealthy_crm.api  # noqa: F401 - registers the <user_id:...> path converter
from activities import api

urlpatterns = [
    path("users/<user_id:user_id>/activities", api.UserActivitiesApi.as_view(), name="user-activities"),
    path(
        "users/<user_id:user_id>/nutrition-snapshot",
        api.NutritionSnapshotApi.as_view(),
        name="user-nutrition-snapshot",
    ),
    path("users/<user_id:user_id>/metrics", api.UserMetricsApi.as_view(), name="user-metrics"),
]
