from django.urls import path

from sync.api import AppEventWebhookApi

urlpatterns = [
    path("webhooks/app-event", AppEventWebhookApi.as_view(), name="webhook-app-event"),
]
