"""Validation of inbound app events: the envelope and one payload schema per entity type.

The serializers only validate and normalise; `sync.services` applies the result.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone
from rest_framework import serializers

from activities.models import ACTIVITY_VALUE_RANGES, ActivityType
from goals.models import GoalMetric, GoalPriority, GoalStatus, GoalType
from goals.rules import goal_metric_resolve
from profiles.models import ActivityLevel, PrimaryGoal
from yahealthy_crm.errors import ApplicationError
from yahealthy_crm.fast_validation import FastValidator
from yahealthy_crm.json_input import JsonTypedSerializer

ACTIVITY_OPERATIONS = ("create", "update", "delete")
# entityType -> operations the CRM accepts (seed "Webhook from App to CRM").
ENTITY_OPERATIONS: dict[str, tuple[str, ...]] = {
    "profile": ("create", "update"),
    ActivityType.FOOD_LOG: ACTIVITY_OPERATIONS,
    ActivityType.EXERCISE: ACTIVITY_OPERATIONS,
    ActivityType.WEIGHT_LOG: ACTIVITY_OPERATIONS,
    ActivityType.WATER_LOG: ACTIVITY_OPERATIONS,
    ActivityType.SLEEP_LOG: ACTIVITY_OPERATIONS,
    "goal": ("create", "update", "delete", "progress"),
    ActivityType.MILESTONE: ("create", "update", "delete"),
    ActivityType.APP_OPEN: ("create",),
}
ACTIVITY_ENTITY_TYPES = {
    ActivityType.FOOD_LOG,
    ActivityType.EXERCISE,
    ActivityType.WEIGHT_LOG,
    ActivityType.WATER_LOG,
    ActivityType.SLEEP_LOG,
    ActivityType.MILESTONE,
    ActivityType.APP_OPEN,
}
# Entity types whose records the app addresses by id: externalId is required.
EXTERNAL_ID_REQUIRED = ACTIVITY_ENTITY_TYPES - {ActivityType.APP_OPEN, ActivityType.MILESTONE} | {"goal"}
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
# \Z, not $: Python's $ also matches before a final newline (the schema's ECMA $ does not).
USER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}\Z"
EXTERNAL_ID_MAX_LENGTH = 128


def _dec(value: float | None, places: int = 1) -> Decimal | None:
    return None if value is None else Decimal(str(round(float(value), places)))


def _in_range(column: str) -> dict:
    """min_value/max_value of a payload field from the range of the activity column it fills."""
    low, high = ACTIVITY_VALUE_RANGES[column]
    return {"min_value": low, "max_value": high}


class EventEnvelopeSerializer(JsonTypedSerializer):
    entityType = serializers.CharField(max_length=32)
    operation = serializers.CharField(max_length=16)
    userId = serializers.RegexField(USER_ID_PATTERN, max_length=64, trim_whitespace=False)
    externalId = serializers.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, required=False, allow_blank=True, default="")
    occurredAt = serializers.DateTimeField(required=False, allow_null=True, default=None)
    payload = serializers.DictField(required=False, default=dict)

    def validate_entityType(self, value: str) -> str:
        if value not in ENTITY_OPERATIONS:
            raise serializers.ValidationError(
                f"Unknown entity type '{value}'. Expected one of: {', '.join(ENTITY_OPERATIONS)}."
            )
        return value

    def validate_occurredAt(self, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value > timezone.now() + FUTURE_TOLERANCE:
            raise serializers.ValidationError("occurredAt is in the future.")
        return value

    def validate(self, attrs: dict) -> dict:
        operations = ENTITY_OPERATIONS[attrs["entityType"]]
        if attrs["operation"] not in operations:
            raise serializers.ValidationError(
                {
                    "operation": [
                        f"Unsupported operation '{attrs['operation']}' for {attrs['entityType']}. "
                        f"Expected one of: {', '.join(operations)}."
                    ]
                }
            )
        return attrs


def external_id_derive(event: dict, *, candidate: str) -> None:
    """A create without externalId is named by its idempotency key (the seed never sends one).

    The same key always names the same record, so a later update or delete sends that key as
    externalId. `candidate` is the Idempotency-Key, else `webhook:<webhook-id>` (batch:
    `webhook:<webhook-id>:<index>`). Sets event["externalId"] or raises a ValidationError saying
    what to send.
    """
    if event["entityType"] not in EXTERNAL_ID_REQUIRED or event["externalId"]:
        return
    if event["operation"] == "create" and candidate and len(candidate) <= EXTERNAL_ID_MAX_LENGTH:
        event["externalId"] = candidate
        return
    if event["operation"] == "create":
        message = (
            f"Send externalId (or an Idempotency-Key of at most {EXTERNAL_ID_MAX_LENGTH} characters, "
            "which then names the record)."
        )
    else:
        message = (
            f"Required to {event['operation']} a {event['entityType']}: send the externalId of its create "
            "(for a create sent without one, its Idempotency-Key)."
        )
    raise serializers.ValidationError({"externalId": [message]})


class _PayloadSerializer(JsonTypedSerializer):
    """Base: unknown payload keys are kept in the stored payload but never reach typed columns."""

    def columns(self) -> dict:
        return self.columns_from(self.validated_data)

    @staticmethod
    def columns_from(data: dict) -> dict:
        """The typed activity columns the validated payload fills."""
        return {}


class _LogPayloadSerializer(_PayloadSerializer):
    date = serializers.DateField(required=False, allow_null=True, default=None)


class FoodLogPayloadSerializer(_LogPayloadSerializer):
    food_name = serializers.CharField(max_length=200)
    meal_type = serializers.CharField(max_length=32, required=False, allow_blank=True)
    calories = serializers.FloatField(**_in_range("calories_kcal"))
    protein = serializers.FloatField(**_in_range("protein_g"), required=False, allow_null=True)
    carbs = serializers.FloatField(**_in_range("carbs_g"), required=False, allow_null=True)
    fat = serializers.FloatField(**_in_range("fat_g"), required=False, allow_null=True)

    @staticmethod
    def columns_from(data: dict) -> dict:
        return {
            "calories_kcal": _dec(data["calories"]),
            "protein_g": _dec(data.get("protein")),
            "carbs_g": _dec(data.get("carbs")),
            "fat_g": _dec(data.get("fat")),
        }


class ExercisePayloadSerializer(_LogPayloadSerializer):
    exercise_type = serializers.CharField(max_length=64)
    duration_minutes = serializers.IntegerField(**_in_range("exercise_minutes"))
    calories_burned = serializers.FloatField(**_in_range("calories_burned_kcal"), required=False, allow_null=True)
    steps = serializers.IntegerField(**_in_range("steps"), required=False, allow_null=True)

    @staticmethod
    def columns_from(data: dict) -> dict:
        return {
            "exercise_minutes": data["duration_minutes"],
            "calories_burned_kcal": _dec(data.get("calories_burned")),
            "steps": data.get("steps"),
        }


class WeightLogPayloadSerializer(_LogPayloadSerializer):
    weight_kg = serializers.FloatField(**_in_range("weight_kg"))

    @staticmethod
    def columns_from(data: dict) -> dict:
        return {"weight_kg": _dec(data["weight_kg"])}


class WaterLogPayloadSerializer(_LogPayloadSerializer):
    amount_ml = serializers.IntegerField(**_in_range("water_ml"))

    @staticmethod
    def columns_from(data: dict) -> dict:
        return {"water_ml": data["amount_ml"]}


class SleepLogPayloadSerializer(_LogPayloadSerializer):
    hours = serializers.FloatField(**_in_range("sleep_hours"))
    quality = serializers.CharField(max_length=32, required=False, allow_blank=True)

    @staticmethod
    def columns_from(data: dict) -> dict:
        return {"sleep_hours": _dec(data["hours"], 2)}


class MilestonePayloadSerializer(_LogPayloadSerializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class AppOpenPayloadSerializer(_LogPayloadSerializer):
    platform = serializers.CharField(max_length=32, required=False, allow_blank=True)
    app_version = serializers.CharField(max_length=32, required=False, allow_blank=True)


class ProfilePayloadSerializer(_PayloadSerializer):
    age = serializers.IntegerField(min_value=13, max_value=120, required=False, allow_null=True)
    height_cm = serializers.FloatField(min_value=50, max_value=280, required=False, allow_null=True)
    current_weight_kg = serializers.FloatField(min_value=20, max_value=500, required=False, allow_null=True)
    activity_level = serializers.ChoiceField(ActivityLevel.choices, required=False, allow_blank=True)
    primary_goal = serializers.ChoiceField(PrimaryGoal.choices, required=False, allow_blank=True)
    consent_ai_processing = serializers.BooleanField(required=False)
    consent_marketing = serializers.BooleanField(required=False)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)  # RFC 5321's limit
    phone = serializers.RegexField(
        r"^\+?[\d\s().-]{7,20}\Z", max_length=21, required=False, allow_blank=True, trim_whitespace=False
    )

    def profile_fields(self) -> dict:
        return self.profile_fields_from(self.validated_data)

    @staticmethod
    def profile_fields_from(validated: dict) -> dict:
        data = dict(validated)
        for name in ("height_cm", "current_weight_kg"):
            if name in data:
                data[name] = _dec(data[name])
        return data


class GoalPayloadSerializer(_PayloadSerializer):
    goal_type = serializers.ChoiceField(GoalType.choices)
    goal_value = serializers.FloatField(min_value=0.01, max_value=1_000_000)
    goal_unit = serializers.CharField(max_length=16)
    metric = serializers.ChoiceField(GoalMetric.choices, required=False)
    start_value = serializers.FloatField(min_value=0, max_value=1_000_000, required=False, allow_null=True)
    target_date = serializers.DateField(required=False, allow_null=True)
    priority = serializers.ChoiceField(GoalPriority.choices, required=False)
    status = serializers.ChoiceField([GoalStatus.ACTIVE, GoalStatus.COMPLETED, GoalStatus.ABANDONED], required=False)
    progress_pct = serializers.FloatField(min_value=0, max_value=100, required=False)

    def validate(self, attrs: dict) -> dict:
        attrs["metric"] = _goal_metric(attrs)
        return attrs


class GoalUpdatePayloadSerializer(GoalPayloadSerializer):
    """An update may send any subset of the goal's fields."""

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            field.required = False
        return fields

    def validate(self, attrs: dict) -> dict:
        # A metric sent without goal_type is checked against the stored goal's type when applied.
        if "goal_type" in attrs:
            attrs["metric"] = _goal_metric(attrs)
        return attrs


class GoalProgressPayloadSerializer(_PayloadSerializer):
    progress_pct = serializers.FloatField(min_value=0, max_value=100)
    streak_days = serializers.IntegerField(min_value=0, max_value=100000, required=False)


def _goal_metric(attrs: dict) -> str:
    """The goals rule (goals.rules): a sent metric must fit goal_type, else it is inferred (app defaults)."""
    try:
        return goal_metric_resolve(
            goal_type=attrs["goal_type"],
            goal_unit=attrs.get("goal_unit", ""),
            metric=attrs.get("metric"),
            app_default=True,
        )
    except ApplicationError as exc:
        raise serializers.ValidationError(exc.details) from exc


PAYLOAD_SERIALIZERS: dict[tuple[str, str], type[_PayloadSerializer]] = {
    **{
        (t, op): s
        for t, s in [
            (ActivityType.FOOD_LOG, FoodLogPayloadSerializer),
            (ActivityType.EXERCISE, ExercisePayloadSerializer),
            (ActivityType.WEIGHT_LOG, WeightLogPayloadSerializer),
            (ActivityType.WATER_LOG, WaterLogPayloadSerializer),
            (ActivityType.SLEEP_LOG, SleepLogPayloadSerializer),
            (ActivityType.MILESTONE, MilestonePayloadSerializer),
            (ActivityType.APP_OPEN, AppOpenPayloadSerializer),
        ]
        for op in ("create", "update")
    },
    ("profile", "create"): ProfilePayloadSerializer,
    ("profile", "update"): ProfilePayloadSerializer,
    ("goal", "create"): GoalPayloadSerializer,
    ("goal", "update"): GoalUpdatePayloadSerializer,
    ("goal", "progress"): GoalProgressPayloadSerializer,
}


def payload_serializer_for(entity_type: str, operation: str, payload: dict) -> _PayloadSerializer | None:
    """The payload validator for this event, None when the operation carries no payload (delete)."""
    serializer_class = PAYLOAD_SERIALIZERS.get((entity_type, operation))
    return serializer_class(data=payload) if serializer_class else None


@dataclass(frozen=True)
class ValidatedPayload:
    """A payload that passed its serializer: the validated values and what they mean."""

    serializer_class: type[_PayloadSerializer]
    validated_data: dict

    def columns(self) -> dict:
        return self.serializer_class.columns_from(self.validated_data)

    def profile_fields(self) -> dict:
        return self.serializer_class.profile_fields_from(self.validated_data)


class EventValidator:
    """Validates app events (envelope, externalId rule, payload) with one serializer instance per
    kind, reused for every event of a request: DRF copies a serializer's fields for each new
    instance, which costs more than validating a small event."""

    def __init__(self) -> None:
        self._envelope = FastValidator(EventEnvelopeSerializer())
        self._payloads: dict[type, FastValidator] = {}

    def validate(self, data: dict, *, derived_external_id: str) -> tuple[dict, ValidatedPayload | None]:
        """The validated envelope and payload; raises ValidationError with the fields' errors
        (payload errors under "payload")."""
        event = _run(self._envelope, data)
        external_id_derive(event, candidate=derived_external_id)
        serializer_class = PAYLOAD_SERIALIZERS.get((event["entityType"], event["operation"]))
        if serializer_class is None:  # no payload (delete)
            return event, None
        validator = self._payloads.get(serializer_class)
        if validator is None:
            validator = self._payloads[serializer_class] = FastValidator(serializer_class())
        try:
            validated = _run(validator, event["payload"])
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"payload": exc.detail}) from exc
        return event, ValidatedPayload(serializer_class, dict(validated))


def _run(validator: FastValidator, data) -> dict:
    """The fast path's result, else DRF's (which raises the ValidationError for invalid data)."""
    validated = validator.run(data)
    return validator.serializer.run_validation(data) if validated is None else validated


_thread_validators = threading.local()


def event_validator_get() -> EventValidator:
    """This thread's EventValidator, built once: the single endpoint validates one event per request,
    and building the serializers costs more than using them. Per thread, because a validating
    serializer keeps per-call state (gunicorn runs requests in threads)."""
    validator = getattr(_thread_validators, "validator", None)
    if validator is None:
        validator = _thread_validators.validator = EventValidator()
    return validator
