from django.urls import path

from goals import api

urlpatterns = [
    path("users/<str:user_id>/goals", api.UserGoalsApi.as_view(), name="user-goals"),
    path("goals/<int:goal_id>", api.GoalDetailApi.as_view(), name="goal-detail"),
]
