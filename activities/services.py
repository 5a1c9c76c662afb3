"""Writes of the activities app: activity rows from app events and their embeddings."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction

from activities.embeddings import embed_texts
from activities.models import ActivitySource, ActivityType, UserActivity
from profiles.models import CrmUserProfile

logger = logging.getLogger(__name__)

# Typed columns an app event may fill (everything else stays in `payload`).
ACTIVITY_COLUMNS = (
    "calories_kcal",
    "protein_g",
    "carbs_g",
    "fat_g",
    "water_ml",
    "weight_kg",
    "sleep_hours",
    "exercise_minutes",
    "calories_burned_kcal",
    "steps",
)
# An app open is a bare engagement ping: nothing to search for, so no embedding.
NOT_EMBEDDED_TYPES = {ActivityType.APP_OPEN}


def activity_upsert_from_app(
    *,
    user: CrmUserProfile,
    existing: UserActivity | None,
    activity_type: str,
    external_id: str,
    occurred_at: dt.datetime,
    logged_date: dt.date,
    payload: dict[str, Any],
    columns: dict[str, Any],
) -> tuple[UserActivity, bool]:
    """Create the app's activity `external_id`, or replace `existing` (the app wins for activities).

    The caller looked `existing` up and checked ordering (`source_updated_at`) while holding the
    user's profile row lock, so no other event of this user can insert the same activity meanwhile.
    """
    values = {
        "source": ActivitySource.APP,
        "occurred_at": occurred_at,
        "logged_date": logged_date,
        "payload": payload,
        "source_updated_at": occurred_at,
        "embedding": None,  # recomputed after commit from the new text
        **{column: columns.get(column) for column in ACTIVITY_COLUMNS},
    }
    if existing is None:
        activity = UserActivity.objects.create(
            user=user, activity_type=activity_type, external_id=external_id, **values
        )
        return activity, True
    for name, value in values.items():
        setattr(existing, name, value)
    existing.save(update_fields=[*values, "updated_at"])
    return existing, False


def activity_get_for_app_event(*, user_id: str, activity_type: str, external_id: str) -> UserActivity | None:
    if not external_id:
        return None
    return (
        UserActivity.objects.filter(user_id=user_id, activity_type=activity_type, external_id=external_id)
        .defer("embedding")
        .first()
    )


def activity_delete(*, activity: UserActivity) -> None:
    """Remove the activity and, with the row, its embedding."""
    activity.delete()


def activity_text(activity: UserActivity) -> str:
    """The text an activity is embedded from: type, day, the app's free text and its numbers."""
    payload = activity.payload or {}
    parts = [activity.activity_type.replace("_", " "), activity.logged_date.isoformat()]
    for key in ("food_name", "meal_type", "exercise_type", "title", "description", "quality", "notes"):
        if payload.get(key):
            parts.append(str(payload[key]))
    labels = {
        "calories_kcal": "kcal",
        "protein_g": "g protein",
        "carbs_g": "g carbs",
        "fat_g": "g fat",
        "water_ml": "ml water",
        "weight_kg": "kg body weight",
        "sleep_hours": "hours sleep",
        "exercise_minutes": "minutes exercise",
        "calories_burned_kcal": "kcal burned",
        "steps": "steps",
    }
    for column, label in labels.items():
        value = getattr(activity, column)
        if value is not None:
            parts.append(f"{float(value):g} {label}")
    return ", ".join(parts)


def activity_embedding_refresh(*, activity_id: int) -> bool:
    """Compute and store the activity's embedding. Safe to run twice; False when nothing to do."""
    activity = UserActivity.objects.filter(pk=activity_id).defer("embedding").first()
    if activity is None or activity.activity_type in NOT_EMBEDDED_TYPES:
        return False
    text = activity_text(activity)
    (vector,) = embed_texts([text])
    with transaction.atomic():
        # The row may have been updated (new text) or deleted while the embedding was computed.
        updated = UserActivity.objects.filter(pk=activity_id, updated_at=activity.updated_at).update(embedding=vector)
    return bool(updated)
