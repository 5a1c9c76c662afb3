from django.urls import path

import yahealthy_crm.api  # noqa: F401 - registers the <user_id:...> path converter
from goals import api

urlpatterns = [
    path("users/<user_id:user_id>/goals", api.UserGoalsApi.as_view(), name="user-goals"),
    path(
        "users/<user_id:user_id>/nutrition-snapshot",
        api.NutritionSnapshotApi.as_view(),
        name="user-nutrition-snapshot",
    ),
    path("goals/<int:goal_id>", api.GoalDetailApi.as_view(), name="goal-detail"),
]
