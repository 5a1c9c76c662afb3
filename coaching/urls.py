from django.urls import path

import yahealthy_crm.api  # noqa: F401 - registers the <user_id:...> path converter
from coaching import api

urlpatterns = [
    path("jobs/<slug:job>", api.JobTriggerView.as_view(), name="job-trigger"),
    path("users/<user_id:user_id>/ask", api.AskApi.as_view(), name="user-ask"),
    path("users/<user_id:user_id>/insights", api.InsightListApi.as_view(), name="user-insights"),
    path(
        "users/<user_id:user_id>/insights/<int:insight_id>/dismiss",
        api.InsightDismissApi.as_view(),
        name="user-insight-dismiss",
    ),
    path("users/<user_id:user_id>/coaching-history", api.CoachingHistoryApi.as_view(), name="user-coaching-history"),
    path("users/<user_id:user_id>/metrics", api.UserMetricsApi.as_view(), name="user-metrics"),
]
