"""Who made a change: the audit log's actor types, shared by auth, audit and every service."""

from django.db import models


class ActorType(models.TextChoices):
    USER = "user"
    APP = "app"
    STAFF = "staff"
    AI_ASSISTANT = "ai_assistant"
    SYSTEM = "system"
