"""DRF fields shared by every money-moving endpoint.

Amounts travel as decimal strings ("12.50"). A JSON number is refused: a
float has already lost precision by the time we would see it.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.money import MONEY_CEILING, InvalidMoney, money_parse


@extend_schema_field({"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "example": "12.50"})
class AmountField(serializers.Field):
    """A positive decimal string (`money_parse`, strict) below MAX_AMOUNT; zero too with `allow_zero`.

    The credit type's scale is checked by the serializer (`check_scale`) once
    it knows the credit type.
    """

    default_error_messages = {
        "not_a_string": 'Amounts are decimal strings such as "12.50", not JSON numbers.',
        "invalid_format": 'Not a plain decimal like "12.50" (no sign, exponent, NaN or Infinity).',
        "not_positive": "Amount must be greater than zero.",
        "too_large": "Amount must be less than {max_amount}.",
    }

    def __init__(self, *, allow_zero: bool = False, **kwargs) -> None:
        self.allow_zero = allow_zero  # a capture of a job that used nothing is "0"
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> Decimal:
        # MAX_AMOUNT is the API's own bound, below the column's ceiling that money_parse applies.
        max_amount = min(settings.MAX_AMOUNT, MONEY_CEILING)
        try:
            value = money_parse(data, scale=None, allow_zero=self.allow_zero, strict=True)
        except InvalidMoney as error:
            self.fail(error.code, max_amount=max_amount)
        if value >= max_amount:
            self.fail("too_large", max_amount=max_amount)
        return value

    def to_representation(self, value) -> str:
        return format(value, "f")


def check_scale(params: dict, scale: int, field: str = "amount") -> None:
    """If `params` has `field`, refuse it (as that field's error) when it has more places than `scale`."""
    value = params.get(field)
    if value is None:
        return
    try:
        money_parse(value, scale=scale, allow_zero=True)
    except InvalidMoney as error:
        message = error.message
        if error.code == "too_many_decimals":
            message = f"At most {scale} decimal places are allowed for this credit type."
        raise serializers.ValidationError({field: [serializers.ErrorDetail(message, code=error.code)]}) from error


def _depth(value) -> int:
    """Levels of objects and arrays in `value` (a scalar: 0); iterative, so never a RecursionError."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@extend_schema_field(OpenApiTypes.OBJECT)
class MetadataField(serializers.Field):
    """A JSON object of bounded size and depth, kept with the ledger entry."""

    default_error_messages = {
        "not_an_object": "Metadata must be a JSON object.",
        "too_large": "Metadata may be at most {max_bytes} bytes of JSON.",
        "too_deep": "Metadata may be nested at most {max_depth} levels deep.",
        "nul_character": "Metadata may not contain NUL characters.",
    }

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", dict)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> dict:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        if _depth(data) > settings.MAX_METADATA_DEPTH:
            self.fail("too_deep", max_depth=settings.MAX_METADATA_DEPTH)
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if len(encoded.encode()) > settings.MAX_METADATA_BYTES:
            self.fail("too_large", max_bytes=settings.MAX_METADATA_BYTES)
        if _has_nul(data):
            self.fail("nul_character")
        return data

    def to_representation(self, value) -> dict:
        return value


def text_field(max_length: int = 255, **kwargs) -> serializers.CharField:
    """Optional free text; NUL characters are refused by DRF's CharField."""
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_blank", True)
    kwargs.setdefault("default", "")
    return serializers.CharField(max_length=max_length, **kwargs)
