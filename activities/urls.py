from django.urls import path

import yahealthy_crm.api  # noqa: F401 - registers the <user_id:...> path converter
from activities import api

urlpatterns = [
    path("users/<user_id:user_id>/activities", api.UserActivitiesApi.as_view(), name="user-activities"),
    path("users/<user_id:user_id>/activities/search", api.ActivitySearchApi.as_view(), name="user-activity-search"),
]
