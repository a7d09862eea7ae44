"""REST API v1 for pricing: the current catalogue and quotes.

`PricedUsageInput` (a `key` and a `usage`) is shared with the charge
endpoint, so a quote and a charge with the same body are priced by the same
code and agree to the last decimal.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.lists import QUERY_ERRORS, list_body, query_params_validate
from config.money import decimal_text
from config.openapi import raises
from config.serializers import InputSerializer
from pricing.exceptions import CreditTypeNotFound, InvalidUsage, PriceNotConfigured, PricingAnomaly
from pricing.models import KEY_MAX_LENGTH, KEY_PATTERN
from pricing.selectors import CatalogueRow, aliases_all, credit_type_get, prices_current
from pricing.services import USAGE_FIELDS, Usage, price_quote, usage_parse

USAGE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {name: {"type": "integer", "minimum": 0} for name in USAGE_FIELDS},
    "example": {"input_tokens": 1200, "output_tokens": 350},
}


@extend_schema_field(USAGE_SCHEMA)
class UsageField(serializers.Field):
    """Usage counts (`usage_parse`): non-negative JSON integers within the configured bounds; unknown names refused.

    Each problem is its own field error (`usage.input_tokens`: `negative`, ...).
    """

    contract_codes = ("not_an_integer",)  # a count given as "10" or 1.5 (config.openapi: documented under 400)

    def to_internal_value(self, data: Any) -> Usage:
        try:
            return usage_parse(data)
        except InvalidUsage as error:
            if error.problems[0].field is None:  # not an object at all
                raise serializers.ValidationError(error.problems[0].message, code=error.problems[0].code) from error
            raise serializers.ValidationError(
                {p.field: [serializers.ErrorDetail(p.message, p.code)] for p in error.problems}
            ) from error

    def to_representation(self, value: Usage) -> dict:
        return value.as_dict()


class PriceKeyField(serializers.CharField):
    default_error_messages = {
        "invalid_key": "A price key is 1-200 characters: letters, digits and . _ : / @ + -.",
    }

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", KEY_MAX_LENGTH)
        kwargs.setdefault("help_text", "A model id (`openai/gpt-4o`) or an action (`image.generate`).")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):  # a JSON number is not a key
            self.fail("invalid_key")
        value = super().to_internal_value(data)
        if not KEY_PATTERN.match(value.strip().lower()):
            self.fail("invalid_key")
        return value


class PricedUsageInput(InputSerializer):
    """`key` plus `usage`. Usage omitted means one request.

    Mix into an input serializer and call `priced_usage_validate(attrs)` from
    its `validate`.
    """

    key = PriceKeyField(required=False)
    usage = UsageField(required=False)


def priced_usage_validate(attrs: dict, *, amount_allowed: bool) -> dict:
    """Exactly one of `amount` and `key` (with optional `usage`), or a 400 with a code."""
    has_key = "key" in attrs
    has_amount = "amount" in attrs
    if has_key and has_amount:
        raise serializers.ValidationError(
            {"amount": [serializers.ErrorDetail("Give either amount or key with usage, not both.", "amount_and_key")]}
        )
    if not has_key and not has_amount:
        message = "Give either amount or key with usage." if amount_allowed else "This field is required."
        field = "amount" if amount_allowed else "key"
        raise serializers.ValidationError({field: [serializers.ErrorDetail(message, "required")]})
    if "usage" in attrs and not has_key:
        raise serializers.ValidationError(
            {"usage": [serializers.ErrorDetail("Usage is only priced with a key.", "usage_without_key")]}
        )
    if has_key and "usage" not in attrs:
        attrs["usage"] = Usage(requests=1)
    return attrs


class QuoteInput(PricedUsageInput):
    """The body of a priced charge; the charge's fields that do not affect the price are ignored.

    Any other field is refused (`unknown_field`), as everywhere.
    """

    ignored_fields = frozenset({"account", "task_id", "route", "description", "metadata"})
    credit_type = serializers.CharField(max_length=32, required=False)

    def validate(self, attrs: dict) -> dict:
        attrs = priced_usage_validate(attrs, amount_allowed=False)
        attrs["credit_type"] = credit_type_get(attrs.get("credit_type"))
        return attrs


UnitPricesOutput = inline_serializer(
    name="UnitPrices",
    fields={
        "per_request": serializers.CharField(),
        "per_1k_input_tokens": serializers.CharField(),
        "per_1k_output_tokens": serializers.CharField(),
        "per_unit": serializers.CharField(),
        "unit_name": serializers.CharField(),
    },
)

QuoteOutput = inline_serializer(
    name="Quote",
    fields={
        "object": serializers.CharField(),
        "amount": serializers.CharField(),
        "credit_type": serializers.CharField(),
        "key": serializers.CharField(),
        "resolved_key": serializers.CharField(),
        "price_version": serializers.CharField(allow_null=True),
        "version": serializers.IntegerField(allow_null=True),
        "source": serializers.ChoiceField(choices=["database", "environment", "default"]),
        "is_free": serializers.BooleanField(),
        "unit_prices": UnitPricesOutput,
        "usage": serializers.DictField(child=serializers.IntegerField()),
        "anomaly": serializers.CharField(allow_null=True),
        "notices": serializers.ListField(child=serializers.CharField()),
    },
)


class QuoteCreateView(APIView):
    """What a usage of a key would cost now, and by which price version. Charges nothing."""

    @extend_schema(operation_id="quotes_create", request=QuoteInput, responses={200: QuoteOutput})
    @raises(CreditTypeNotFound, PriceNotConfigured, PricingAnomaly)
    def post(self, request):
        data = QuoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        quote = price_quote(key=params["key"], usage=params["usage"], credit_type=params["credit_type"])
        return Response({"object": "quote", **quote.as_json()})


def price_row_body(row: CatalogueRow) -> dict:
    # Unit prices keep their own precision (they are per 1K tokens, per
    # unit), not the credit type's scale, which applies to amounts.
    return {
        "key": row.key,
        "credit_type": row.credit_type.code,
        "source": row.source,
        "price_version": row.version.public_id if row.version else None,
        "version": row.version.version if row.version else None,
        "effective_from": row.effective_from.isoformat() if row.effective_from else None,
        "is_free": row.is_free,
        "per_request": decimal_text(row.per_request),
        "per_1k_input_tokens": decimal_text(row.per_1k_input_tokens),
        "per_1k_output_tokens": decimal_text(row.per_1k_output_tokens),
        "per_unit": decimal_text(row.per_unit),
        "unit_name": row.unit_name,
        "env_variable": row.env_variable or None,
        "shadowed_by": row.shadowed_by or None,
    }


PriceListOutput = inline_serializer(
    name="PriceList",
    fields={
        "object": serializers.ChoiceField(choices=["list"]),
        "has_more": serializers.BooleanField(help_text="Always false: the catalogue is one page."),
        "next_cursor": serializers.CharField(allow_null=True, help_text="Always null."),
        "data": inline_serializer(
            name="PriceEntry",
            many=True,
            fields={
                "key": serializers.CharField(),
                "credit_type": serializers.CharField(),
                "source": serializers.ChoiceField(choices=["database", "environment"]),
                "price_version": serializers.CharField(allow_null=True),
                "version": serializers.IntegerField(allow_null=True),
                "effective_from": serializers.DateTimeField(allow_null=True),
                "is_free": serializers.BooleanField(),
                "per_request": serializers.CharField(),
                "per_1k_input_tokens": serializers.CharField(),
                "per_1k_output_tokens": serializers.CharField(),
                "per_unit": serializers.CharField(),
                "unit_name": serializers.CharField(),
                "env_variable": serializers.CharField(allow_null=True),
                "shadowed_by": serializers.CharField(allow_null=True),
            },
        ),
        "aliases": serializers.DictField(child=serializers.CharField()),
    },
)


class PriceListView(APIView):
    """The catalogue in force now: every priced key, its source and version, and the aliases."""

    @extend_schema(
        operation_id="prices_list",
        parameters=[OpenApiParameter("credit_type", str, required=False, description="Only this credit type")],
        responses={200: PriceListOutput},
    )
    @raises(*QUERY_ERRORS, CreditTypeNotFound)
    def get(self, request):
        query_params_validate(request, ("credit_type",))
        rows = prices_current()
        if "credit_type" in request.query_params:
            code = credit_type_get(request.query_params["credit_type"]).code  # 404 credit_type_not_found
            rows = [row for row in rows if row.credit_type.code == code]
        return Response(list_body([price_row_body(r) for r in rows], aliases=dict(sorted(aliases_all().items()))))
