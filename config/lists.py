"""Lists and query strings: one list shape for every list endpoint, query parameters as strict as bodies.

Every list answers

    {"object": "list", "data": [...], "has_more": true|false, "next_cursor": "..."|null}

newest first; pass `?cursor=<next_cursor>` for the following page and
`?limit=` (1 to 200, default 50) for its size. A cursor is opaque; one that
was not issued by us (tampered, truncated, not base64) is `400
invalid_cursor`, never a 404 or a 500.

Query parameters follow the rules bodies follow (config.parsers,
config.serializers): an unknown name is `400 unknown_field`, a name given
twice `400 duplicate_key`, an empty value (`since=`) a `400
validation_error`; each with `param` naming the parameter.
"""

from __future__ import annotations

import re
from base64 import b64encode
from collections.abc import Iterable
from urllib import parse

from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.response import Response

from config.errors import ErrorCode, RequestRejected
from config.openapi import raises

LIST_QUERY_PARAMS = ("limit", "cursor")
# What `query_params_validate` answers (declare them on a view that calls it: config.openapi.raises).
QUERY_ERRORS = (ErrorCode(400, "unknown_field"), ErrorCode(400, "duplicate_key"), ErrorCode(400, "validation_error"))
# A paginated list: those, and a cursor we did not issue.
LIST_ERRORS = (*QUERY_ERRORS, ErrorCode(400, "invalid_cursor"))
_WHOLE = re.compile(r"[0-9]{1,19}")


def query_params_validate(request, allowed: Iterable[str]) -> None:
    """Refuse unknown, repeated and empty query parameters (400, with `param`)."""
    allowed = set(allowed)
    for name in request.query_params:
        if name not in allowed:
            raise RequestRejected("unknown_field", f"Unknown query parameter {name!r}.", param=name)
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise RequestRejected("duplicate_key", f"The query parameter {name!r} is given more than once.", param=name)
        if values[0] == "":
            raise serializers.ValidationError({name: [serializers.ErrorDetail("May not be blank.", code="blank")]})


def list_body(data: list, *, has_more: bool = False, next_cursor: str | None = None, **extra) -> dict:
    """The one list shape."""
    return {"object": "list", "data": data, "has_more": has_more, "next_cursor": next_cursor, **extra}


def _invalid_cursor() -> RequestRejected:
    return RequestRejected("invalid_cursor", "This cursor was not issued by this API.", param="cursor")


class ListCursorPagination(CursorPagination):
    """Cursor pagination over a unique, integer ordering (`-id`), rendered in the one list shape."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200

    @staticmethod
    def invalid_cursor() -> RequestRejected:
        return _invalid_cursor()

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _WHOLE.fullmatch(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise serializers.ValidationError(
                {"limit": [serializers.ErrorDetail(f"A whole number from 1 to {self.max_page_size}.", code="invalid")]}
            )
        return int(raw)

    def decode_cursor(self, request) -> Cursor | None:
        if request.query_params.get(self.cursor_query_param) is None:
            return None
        try:
            cursor = super().decode_cursor(request)
        except (NotFound, ValueError, UnicodeError) as exc:
            raise _invalid_cursor() from exc
        # The position is an id (the ordering is a unique integer); the offset
        # never negative (a negative slice is a 500 in the ORM).
        if cursor.offset < 0 or (cursor.position is not None and not _WHOLE.fullmatch(cursor.position)):
            raise _invalid_cursor()
        return cursor

    def encode_cursor(self, cursor: Cursor) -> str:
        """The bare cursor token (DRF's version wraps it in a URL)."""
        tokens = {}
        if cursor.offset != 0:
            tokens["o"] = str(cursor.offset)
        if cursor.reverse:
            tokens["r"] = "1"
        if cursor.position is not None:
            tokens["p"] = cursor.position
        return b64encode(parse.urlencode(tokens, doseq=True).encode("ascii")).decode("ascii")

    def get_paginated_response(self, data) -> Response:
        return Response(list_body(list(data), has_more=bool(self.has_next), next_cursor=self.get_next_link()))

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return list_schema(schema)


def list_schema(item_array_schema: dict, **extra_properties: dict) -> dict:
    return {
        "type": "object",
        "required": ["object", "data", "has_more", "next_cursor"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": item_array_schema,
            "has_more": {"type": "boolean"},
            "next_cursor": {
                "type": "string",
                "nullable": True,
                "description": "Pass as `?cursor=` for the next page; null on the last page.",
            },
            **extra_properties,
        },
    }


class StrictListView(ListAPIView):
    """A cursor-paginated list whose query string is validated: filters, `limit` and `cursor` only."""

    pagination_class = ListCursorPagination
    extra_query_params: tuple[str, ...] = ()

    @raises(*LIST_ERRORS)
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    def list(self, request, *args, **kwargs):
        filters = tuple(self.filterset_class.base_filters) if getattr(self, "filterset_class", None) else ()
        query_params_validate(request, filters + self.extra_query_params + LIST_QUERY_PARAMS)
        return super().list(request, *args, **kwargs)
