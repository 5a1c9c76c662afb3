from django.urls import path

import yahealthy_crm.api  # noqa: F401 - registers the <user_id:...> path converter
from coaching import api

urlpatterns = [
    path("jobs/<int:run_id>", api.JobRunView.as_view(), name="job-run"),
    path("jobs/<slug:job>", api.JobTriggerView.as_view(), name="job-trigger"),
    path("retention/outcomes", api.RetentionOutcomesApi.as_view(), name="retention-outcomes"),
    path(
        "users/<user_id:user_id>/retention-actions",
        api.RetentionActionCreateApi.as_view(),
        name="user-retention-actions",
    ),
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
