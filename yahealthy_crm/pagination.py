"""Cursor (keyset) pagination for lists that grow while they are read (GET /api/crm/users).

A page is `limit` rows after the cursor in a fixed ordering: one sort field plus the primary key as
tie-breaker, so no row is skipped or repeated when rows are added, and page N costs what page 1 costs
(no OFFSET). The cursor is opaque to clients: URL-safe base64 of {"o": ordering, "v": last value,
"id": last primary key}. A cursor that does not decode, or was made for another ordering, is a 400.

Response: `{"status": "success", "data": [...], "pagination": {"limit", "ordering", "nextCursor"}}`,
`nextCursor` null on the last page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from rest_framework import serializers

from yahealthy_crm.errors import ApplicationError


@dataclass(frozen=True)
class KeysetOrdering:
    """`field` ascending, or descending when the ordering name starts with "-"; then the primary key."""

    name: str

    @property
    def field(self) -> str:
        return self.name.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.name.startswith("-")

    def order_by(self) -> tuple[str, str]:
        return (self.name, "pk")


def _invalid_cursor(message: str) -> ApplicationError:
    return ApplicationError(message, details={"cursor": [message]})


def cursor_encode(*, ordering: KeysetOrdering, value, pk: int) -> str:
    raw = json.dumps({"o": ordering.name, "v": None if value is None else str(value), "id": pk})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str, *, ordering: KeysetOrdering, queryset: QuerySet) -> tuple[object, int]:
    """(value, pk) of the row a cursor points after; 400 for a malformed or foreign cursor."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        name, raw_value, pk = data["o"], data["v"], data["id"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise _invalid_cursor("Invalid cursor: pass the nextCursor of the previous page as it is.") from None
    if name != ordering.name:
        raise _invalid_cursor(f"This cursor belongs to ordering '{name}', not '{ordering.name}'.")
    if not isinstance(pk, int) or not isinstance(raw_value, str):
        raise _invalid_cursor("Invalid cursor: pass the nextCursor of the previous page as it is.")
    try:
        value = queryset.model._meta.get_field(ordering.field).to_python(raw_value)
    except DjangoValidationError:
        raise _invalid_cursor("Invalid cursor: pass the nextCursor of the previous page as it is.") from None
    return value, pk


def keyset_page(
    queryset: QuerySet, *, ordering: KeysetOrdering, limit: int, cursor: str | None
) -> tuple[list, str | None]:
    """One page of `queryset` in `ordering` after `cursor` (one query), and the cursor of the next page.
    The ordering field must not be nullable."""
    rows = queryset.order_by(*ordering.order_by())
    if cursor:
        value, pk = cursor_decode(cursor, ordering=ordering, queryset=queryset)
        beyond = f"{ordering.field}__{'lt' if ordering.descending else 'gt'}"
        rows = rows.filter(Q(**{beyond: value}) | Q(**{ordering.field: value, "pk__gt": pk}))
    page = list(rows[: limit + 1])
    if len(page) <= limit:
        return page, None
    page = page[:limit]
    last = page[-1]
    return page, cursor_encode(ordering=ordering, value=getattr(last, ordering.field), pk=last.pk)


class CursorPaginationOutputSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    ordering = serializers.CharField()
    nextCursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null: last page."
    )


def cursor_list_envelope_serializer(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """An OpenAPI component for a cursor-paginated list envelope."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "status": serializers.CharField(default="success"),
            "data": item(many=True),
            "pagination": CursorPaginationOutputSerializer(),
        },
    )
