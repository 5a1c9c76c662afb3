from django.urls import path

from webapp import views

app_name = "webapp"
urlpatterns = [
    path("", views.coach_page, name="coach"),
]
