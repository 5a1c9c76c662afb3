"""Strict JSON input: the one reader of JSON request bodies (the REST API's parser and the webhooks).

`json.loads` accepts what PostgreSQL or a client library cannot take: `NaN`/`Infinity`, numbers that
overflow to infinity (`1e999`), strings with NUL characters (PostgreSQL text and jsonb refuse them)
or unpaired surrogates (not encodable as UTF-8), nesting deep enough to exhaust the parser's stack.
Each of these is refused here with a message saying what to fix, so no such value reaches a
serializer, a query or a stored payload.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, serializers
from rest_framework.parsers import BaseParser

# Deeper than any body the API or the app's events need (a webhook payload is 3 levels deep).
MAX_JSON_DEPTH = 32


class JsonInputError(ValueError):
    """A request body that is not acceptable JSON; the message says why (shown to the caller)."""


def _constant_refuse(name: str):
    raise JsonInputError(f"{name} is not valid JSON; send a finite number or null.")


def _float_parse(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"The number {text[:40]} is too large; numbers must fit a 64-bit float.")
    return value


def _int_parse(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # over sys.get_int_max_str_digits() digits
        raise JsonInputError(f"The number {text[:40]}... has too many digits.") from None


def _string_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired UTF-16 surrogate (a lone \\ud800-\\udfff escape); send valid Unicode"
    return None


def _walk(value: Any, *, depth: int = 0) -> tuple[list[str], str] | None:
    """The first unacceptable value: (its path from the top, what is wrong), None when all are fine.
    The path is only built on the way back from a problem (the common case builds nothing)."""
    if depth > MAX_JSON_DEPTH:
        return [], f"is nested more than {MAX_JSON_DEPTH} levels deep"
    if isinstance(value, str):
        problem = _string_problem(value)
        return ([], problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _string_problem(key)
            if problem:
                return [f".{key!r}"], f"has a key that {problem}"
            found = _walk(item, depth=depth + 1)
            if found:
                return [f".{key}", *found[0]], found[1]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _walk(item, depth=depth + 1)
            if found:
                return [f"[{index}]", *found[0]], found[1]
    return None


def json_loads_strict(body: bytes | str) -> Any:
    """The JSON value of `body`, or JsonInputError saying what is wrong with it."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonInputError(f"The body is not UTF-8 (byte {exc.start}); JSON must be UTF-8.") from None
    try:
        value = json.loads(body, parse_constant=_constant_refuse, parse_float=_float_parse, parse_int=_int_parse)
    except JsonInputError:
        raise
    except RecursionError:
        raise JsonInputError(f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep.") from None
    except ValueError as exc:
        raise JsonInputError(f"The body is not valid JSON: {exc}.") from None
    found = _walk(value)
    if found:
        path = ("$" + "".join(found[0]))[:200]
        raise JsonInputError(f"The value at {path} {found[1]}.")
    return value


class StrictJSONParser(BaseParser):
    """DRF parser of `application/json` bodies (the only request content type of the REST API).

    Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are refused with 413 before they are read (DRF's own
    JSONParser reads the raw stream, past Django's limit); only UTF-8 is accepted (RFC 8259).
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = (parser_context.get("encoding") or "utf-8").lower().replace("_", "-")
        if encoding not in ("utf-8", "utf8"):
            raise exceptions.UnsupportedMediaType(
                media_type, detail=f'JSON bodies must be UTF-8, not "{encoding}" (RFC 8259).'
            )
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise RequestDataTooBig(f"The request body is larger than {limit} bytes.")
        try:
            return json_loads_strict(body)
        except JsonInputError as exc:
            raise exceptions.ParseError(str(exc)) from None


# --- Values as sent, judged as the OpenAPI schema states them ------------------------------------

# RFC 3339 full-date and date-time (OpenAPI `format: date` / `date-time`); Django's parsers also take
# `2026-1-5`, `20260105` or a date where a date-time is expected.
JSON_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
JSON_DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_JSON_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _expected_types(field: serializers.Field) -> tuple | None:
    if isinstance(field, serializers.BooleanField):
        return (bool,)
    if isinstance(field, serializers.IntegerField):
        return (int,)
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return (int, float)
    if isinstance(field, serializers.CharField | serializers.ChoiceField | serializers.DateField):
        return (str,)
    if isinstance(field, serializers.DateTimeField):
        return (str,)
    return None


def json_value_error(field: serializers.Field, value: Any, *, query: bool = False) -> str | None:
    """What is wrong with `value` as sent, judged exactly as the OpenAPI schema states the field
    (yahealthy_crm/openapi.py): JSON type, string length, number bounds before any rounding, date
    format. DRF's fields are laxer (they turn "42" into 42, 1 into True, 42 into "42", count lengths
    after trimming, check bounds after rounding), which would make the schema wrong both ways.
    Query parameters are all strings: only their lengths, bounds and formats are checked."""
    expected = _expected_types(field)
    if value is None or expected is None:
        return None  # DRF decides (allow_null, nested fields)
    integral_float = int in expected and isinstance(value, float) and value.is_integer()  # 13.0 is an integer
    wrong_type = isinstance(value, bool) != (bool in expected) or not isinstance(value, expected)
    if not query and wrong_type and not integral_float:
        return f"Must be {_JSON_TYPE_NAMES[expected[-1]]}, not {type(value).__name__}."
    if isinstance(field, serializers.DecimalField):
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            return None  # not a number: DRF's message
        if not number.is_finite():
            return None
        if field.min_value is not None and number < field.min_value:
            return f"Ensure this value is greater than or equal to {field.min_value}."
        if field.max_value is not None and number > field.max_value:
            return f"Ensure this value is less than or equal to {field.max_value}."
    elif isinstance(value, str):
        max_length = getattr(field, "max_length", None)
        if max_length is not None and len(value) > max_length:
            return f"Ensure this field has no more than {max_length} characters."
        if isinstance(field, serializers.DateField) and not JSON_DATE_RE.match(value):
            return "Date has wrong format. Use YYYY-MM-DD."
        if isinstance(field, serializers.DateTimeField) and not JSON_DATE_TIME_RE.match(value):
            return "Datetime has wrong format. Use RFC 3339, e.g. 2026-01-05T12:30:00Z."
    return None


# An input serializer that takes each field only as the JSON type the schema gives it (see
# `json_value_error`). Unknown fields pass (`yahealthy_crm.api.StrictSerializer` refuses them). With
# `context={"query_params": True}` the values are query strings: types are not checked. (A comment,
# not a docstring: drf-spectacular would show an inherited docstring on every subclass's component.)
class JsonTypedSerializer(serializers.Serializer):
    rejects_unknown_fields = False

    def to_internal_value(self, data):
        if isinstance(data, dict):
            query = bool(self.context.get("query_params"))
            errors = {}
            data = dict(data)
            for name, value in data.items():
                field = self.fields.get(name)
                if field is not None and not field.read_only:
                    message = json_value_error(field, value, query=query)
                    if message:
                        errors[name] = [message]
                    elif isinstance(field, serializers.DecimalField) and field.rounding and value is not None:
                        data[name] = _decimal_rounded(field, value)
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _decimal_rounded(field: serializers.DecimalField, value: Any) -> Any:
    """A number in range rounded to the field's places first: DRF counts the digits of 1e-300 before
    it rounds, and would refuse a number the schema allows."""
    try:
        number = Decimal(str(value).strip())
        if not number.is_finite():
            return value
        return str(number.quantize(Decimal(1).scaleb(-field.decimal_places), rounding=field.rounding))
    except ArithmeticError:
        return value
