"""The validation fast path (yahealthy_crm/fast_validation.py) returns exactly what DRF returns, or
declines: compared on every app-event serializer with valid inputs and each field replaced by a
probe value (wrong types, blanks, bounds, bad dates, nulls, control characters) or left out."""

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework import serializers

from sync.inbound.schemas import PAYLOAD_SERIALIZERS, EventEnvelopeSerializer, EventValidator
from yahealthy_crm.fast_validation import FastValidator

VALID = {
    EventEnvelopeSerializer: [
        {"entityType": "food_log", "operation": "create", "userId": "u_1", "externalId": "f1", "payload": {"a": 1}},
        {"entityType": "goal", "operation": "progress", "userId": "a.b:c@d-e", "occurredAt": "2026-11-20T12:00:00Z"},
        {"entityType": "profile", "operation": "update", "userId": "u", "occurredAt": "2026-11-20T12:00:00+02:00"},
    ],
    "food_log": [
        {"food_name": "Oats", "calories": 350},
        {"food_name": " Oats ", "calories": 350.5, "protein": 12, "carbs": 0, "fat": 7.25, "meal_type": "", "x": [1]},
        {"food_name": "Oats", "calories": 0, "date": "2026-02-28", "protein": None},
    ],
    "exercise": [{"exercise_type": "run", "duration_minutes": 30, "calories_burned": 250.5, "steps": 4000}],
    "weight_log": [{"weight_kg": 72.4, "date": "2026-11-20"}],
    "water_log": [{"amount_ml": 250}],
    "sleep_log": [{"hours": 7.5, "quality": "good"}],
    "milestone": [{"title": "10 days", "description": "streak"}],
    "app_open": [{}, {"platform": "ios", "app_version": "3.2.1"}],
    "profile": [
        {"age": 34, "height_cm": 172, "current_weight_kg": 70.2, "activity_level": "moderate"},
        {"primary_goal": "weight_loss", "consent_ai_processing": False, "email": "a@b.co", "phone": "+1 555 123 4567"},
    ],
    "goal": [
        {
            "goal_type": "weight",
            "goal_value": 65,
            "goal_unit": "kg",
            "start_value": 72,
            "target_date": "2027-01-01",
        },
        {"goal_type": "nutrition", "goal_value": 2000, "goal_unit": "kcal", "priority": "high", "status": "active"},
    ],
    "goal_update": [{"progress_pct": 40}, {"goal_type": "nutrition", "goal_value": 120, "goal_unit": "g"}],
    "goal_progress": [{"progress_pct": 55.5, "streak_days": 3}],
}
PROBES = [
    None,
    "",
    "   ",
    " x ",
    "x" * 300,
    "abc\x00",
    "\ud800",
    0,
    1,
    -1,
    1.5,
    13.0,
    10**400,
    1e308,
    -1e308,
    True,
    False,
    [],
    {},
    {"k": None},
    "12",
    "2026-01-05",
    "2026-13-45",
    "2026-02-30",
    "2026-01-05T12:30:00Z",
    "2026-01-05 12:30:00",
    "9999-12-31T23:59:59+14:00",
    "food_log",
    "delete",
    "kcal",
    "weight_loss",
    "weight",
    "nutrition",
    "moderate",
    "high",
    "a@b",
    "not an email",
    "+1 555 123 4567",
]


def _serializer_classes():
    by_name = {EventEnvelopeSerializer: EventEnvelopeSerializer}
    for (entity_type, operation), serializer_class in PAYLOAD_SERIALIZERS.items():
        name = {("goal", "update"): "goal_update", ("goal", "progress"): "goal_progress"}.get(
            (entity_type, operation), str(entity_type)
        )
        by_name[name] = serializer_class
    return by_name


def _drf(serializer, data):
    try:
        return serializer.run_validation(data)
    except serializers.ValidationError:
        return "invalid"


def _same(fast, drf) -> bool:
    """Equal, and every value of the same type (1 == 1.0 == True would hide a difference)."""
    if not isinstance(drf, dict) or dict(fast) != dict(drf) or list(fast) != list(drf):
        return False
    return all(type(fast[name]) is type(drf[name]) for name in drf)


def _inputs(valid: list[dict], fields: list[str]):
    for example in valid:
        yield example
        for name in fields:
            yield {key: value for key, value in example.items() if key != name}
            for probe in PROBES:
                yield {**example, name: probe}


@pytest.mark.parametrize("name", list(VALID))
def test_the_fast_path_returns_what_drf_returns_or_declines(name):
    serializer_class = _serializer_classes()[name]
    serializer = serializer_class()
    fast = FastValidator(serializer_class())
    assert fast.plan is not None, f"{serializer_class.__name__} has no fast path"
    compared = declined = 0

    for data in _inputs(VALID[name], list(serializer.fields)):
        result = fast.run(data)
        if result is None:
            declined += 1
            continue
        expected = _drf(serializer, data)
        assert _same(result, expected), f"{serializer_class.__name__} {data!r}: fast {result!r}, DRF {expected!r}"
        compared += 1

    for example in VALID[name]:  # the common case is what the fast path is for
        assert fast.run(example) is not None, example
    assert compared
    assert declined


def test_the_fast_path_declines_a_serializer_it_does_not_know():
    class WithDecimal(EventEnvelopeSerializer):
        amount = serializers.DecimalField(max_digits=6, decimal_places=2)

    class WithOwnStep(EventEnvelopeSerializer):
        def to_internal_value(self, data):
            return {**super().to_internal_value(data), "extra": True}

    assert FastValidator(WithDecimal()).plan is None
    assert FastValidator(WithDecimal()).run({"amount": Decimal("1.00")}) is None
    assert FastValidator(WithOwnStep()).plan is None


def test_event_validation_gives_the_same_event_and_payload_as_drf():
    data = {
        "entityType": "food_log",
        "operation": "create",
        "userId": "u_1",
        "occurredAt": "2026-11-20T12:00:00Z",
        "payload": {"food_name": "Oats", "calories": 350, "date": "2026-11-20"},
    }
    event, payload = EventValidator().validate(data, derived_external_id="key_1")

    assert event == {**EventEnvelopeSerializer().run_validation(data), "externalId": "key_1"}
    assert event["occurredAt"] == dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    assert payload.validated_data == {"date": dt.date(2026, 11, 20), "food_name": "Oats", "calories": 350.0}
