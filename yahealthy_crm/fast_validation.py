"""A fast path for `JsonTypedSerializer.run_validation` on the webhook hot paths.

DRF spends most of an app event's validation in its per-field machinery (empty-value handling,
validator objects, error collection): 0.14 ms per event, about a quarter of a batch's Python time.
`FastValidator` validates the common input, every value of the JSON type and within the limits the
serializer's own fields state, to exactly the values DRF returns, with the same field-level
`validate_<name>` methods and serializer-level `validate`. It is built from the serializer's fields,
so there is no second copy of the rules.

Whenever it is not sure (a field type or validator it does not know, a value of another type, out of
range, blank, null where not allowed, any ValidationError), it answers None and the caller runs DRF,
which then also words the errors. tests/platform/test_fast_validation.py compares both on a corpus
of valid and invalid inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from django.core import validators as django_validators
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from yahealthy_crm.json_input import JSON_DATE_RE, JSON_DATE_TIME_RE, JsonTypedSerializer


class _NotSure(Exception):
    """The fast path declines this input: DRF decides."""


# What declines the fast path: its own doubt, a validation error, or a value DRF's conversion refuses
# (ValueError includes UnicodeError, LookupError an unknown choice).
_FAILURES = (
    _NotSure,
    serializers.ValidationError,
    DjangoValidationError,
    ValueError,
    TypeError,
    OverflowError,
    LookupError,
)
# Validators whose rule the checks below apply inline (cheaper than calling the validator objects).
_INLINE = (django_validators.ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator)


def _bounds(field: serializers.Field) -> Callable[[Any], None] | None:
    """The field's validators as one check, or None when one of them is of a kind not handled here."""
    checks: list[Callable[[Any], None]] = []
    for validator in field.validators:
        kind = type(validator)
        if kind in _INLINE:
            continue
        if kind is django_validators.MaxValueValidator:
            checks.append(lambda value, limit=validator.limit_value: _refuse_if(value > limit))
        elif kind is django_validators.MinValueValidator:
            checks.append(lambda value, limit=validator.limit_value: _refuse_if(value < limit))
        elif kind is django_validators.MaxLengthValidator:
            checks.append(lambda value, limit=validator.limit_value: _refuse_if(len(value) > limit))
        elif kind is django_validators.MinLengthValidator:
            checks.append(lambda value, limit=validator.limit_value: _refuse_if(len(value) < limit))
        elif kind is django_validators.RegexValidator:
            # Django's own test (`regex.search`, `inverse_match`) on the compiled pattern: the
            # validator's lazily compiled one costs a proxy lookup per call.
            pattern = re.compile(validator.regex.pattern, validator.regex.flags)
            checks.append(
                lambda value, search=pattern.search, inverse=validator.inverse_match: _refuse_if(
                    (search(str(value)) is not None) == inverse
                )
            )
        elif kind is django_validators.EmailValidator:
            checks.append(validator)  # raises DjangoValidationError when the value does not match
        else:
            return None
    if any(callable(getattr(validator, "limit_value", None)) for validator in field.validators):
        return None  # a limit computed per call: leave it to DRF

    def all_checks(value: Any) -> None:
        for check in checks:
            check(value)

    return all_checks


def _refuse_if(condition: bool) -> None:
    if condition:
        raise _NotSure


def _text(field: serializers.CharField) -> Callable[[Any], Any]:
    blank_ok, trim, max_length = field.allow_blank, field.trim_whitespace, field.max_length

    def convert(value: Any) -> Any:
        if type(value) is not str or (max_length is not None and len(value) > max_length) or "\x00" in value:
            raise _NotSure
        value.encode()  # UnicodeEncodeError (a ValueError) for a lone surrogate
        text = value.strip() if trim else value
        if not text:  # blank (DRF: "" or, when trimming, only whitespace) skips the validators
            if blank_ok:
                return ""
            raise _NotSure
        return text

    return convert


def _integer(value: Any) -> int:
    if type(value) is not int:  # bools, and integral floats (13.0), go to DRF
        raise _NotSure
    return value


def _number(value: Any) -> float:
    if type(value) is not float and type(value) is not int:
        raise _NotSure
    number = float(value)
    if not math.isfinite(number):
        raise _NotSure
    return number


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise _NotSure
    return value


def _string_then(field: serializers.Field, pattern) -> Callable[[Any], Any]:
    """A date or date-time: the schema's format first, then DRF's own parsing (and time zone)."""

    def convert(value: Any) -> Any:
        if type(value) is not str or not pattern.match(value):
            raise _NotSure
        return field.to_internal_value(value)

    return convert


def _choice(field: serializers.ChoiceField) -> Callable[[Any], Any]:
    choices, blank_ok = field.choice_strings_to_values, field.allow_blank

    def convert(value: Any) -> Any:
        if type(value) is not str:
            raise _NotSure
        if value == "":
            if blank_ok:
                return ""
            raise _NotSure
        return choices[value]  # KeyError (a LookupError) for an unknown choice: caught below

    return convert


def _mapping(field: serializers.DictField) -> Callable[[Any], Any]:
    allow_empty = field.allow_empty

    def convert(value: Any) -> Any:
        if type(value) is not dict or (not value and not allow_empty):
            raise _NotSure
        return {str(key): item for key, item in value.items()}

    return convert


def _converter(field: serializers.Field) -> Callable[[Any], Any] | None:
    """The conversion DRF's field applies to a valid JSON value, or None for a field not handled here."""
    kind = type(field)
    if isinstance(field, serializers.CharField) and (
        kind.to_internal_value is serializers.CharField.to_internal_value
        and kind.run_validation is serializers.CharField.run_validation
    ):
        return _text(field)  # CharField, RegexField, EmailField
    if kind is serializers.IntegerField:
        return _integer
    if kind is serializers.FloatField:
        return _number
    if kind is serializers.BooleanField:
        return _boolean
    if kind is serializers.DateField:
        return _string_then(field, JSON_DATE_RE)
    if kind is serializers.DateTimeField:
        return _string_then(field, JSON_DATE_TIME_RE)
    if kind is serializers.ChoiceField:
        return _choice(field)
    if kind is serializers.DictField and type(field.child).__name__ == "_UnvalidatedField":
        return _mapping(field)
    return None


class FastValidator:
    """`serializer.run_validation(data)` for the common valid input, or None (see the module)."""

    def __init__(self, serializer: JsonTypedSerializer) -> None:
        self.serializer = serializer
        self.plan: list[tuple] | None = self._plan(serializer)

    @staticmethod
    def _plan(serializer: JsonTypedSerializer) -> list[tuple] | None:
        kind = type(serializer)
        if not isinstance(serializer, JsonTypedSerializer) or serializer.validators:
            return None
        if (
            kind.to_internal_value is not JsonTypedSerializer.to_internal_value
            or kind.run_validation is not serializers.Serializer.run_validation
        ):
            return None  # a serializer with steps of its own: DRF runs them
        if getattr(serializer, "partial", False) or serializer.context.get("query_params"):
            return None
        plan = []
        for name, field in serializer.fields.items():
            if field.read_only:
                continue
            convert, check = _converter(field), _bounds(field)
            if convert is None or check is None or field.source != name:
                return None
            default = field.default
            if getattr(default, "requires_context", False):
                return None
            method = getattr(serializer, f"validate_{name}", None)
            plan.append((name, field.required, default, field.allow_null, convert, check, method))
        return plan

    def run(self, data: Any) -> dict | None:
        if self.plan is None or type(data) is not dict:
            return None
        validated: dict = {}
        try:
            for name, required, default, allow_null, convert, check, method in self.plan:
                if name in data:
                    value = data[name]
                    if value is None:
                        if not allow_null:
                            return None
                    else:
                        value = convert(value)
                        check(value)
                elif required:
                    return None
                elif default is empty:
                    continue
                else:
                    value = default() if callable(default) else default
                validated[name] = method(value) if method is not None else value
            return self.serializer.validate(validated)
        except _FAILURES:
            return None
