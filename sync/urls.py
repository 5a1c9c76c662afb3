from django.urls import path

from sync.api import AppEventsBatchWebhookApi, AppEventWebhookApi

urlpatterns = [
    path("webhooks/app-event", AppEventWebhookApi.as_view(), name="webhook-app-event"),
    path("webhooks/app-events", AppEventsBatchWebhookApi.as_view(), name="webhook-app-events"),
]
