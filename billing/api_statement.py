"""GET /api/v1/accounts/{id}/statement: an account's statement for a period, as JSON or CSV.

`?credit_type=` (default: the default credit type), `?from=` (inclusive) and
`?to=` (exclusive), ISO 8601 date-times (UTC if no offset); either may be
left out (from the first entry, to now). CSV is asked for with
`?format=csv` or `Accept: text/csv`; it streams every entry of the period,
between an `opening` line and a `closing` line that carries
`chain_verified`. The JSON answer holds at most STATEMENT_MAX_ENTRIES
entries (a longer period is `400 statement_too_large`: ask for CSV or a
shorter period). See billing/account_statement.py for what is proven.
"""

from __future__ import annotations

from django import forms
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import AccountNotFound
from accounts.selectors import account_get_for_key
from billing.account_statement import CSV_COLUMNS, STATEMENT_MAX_ENTRIES, AccountStatement, statement_csv_lines
from billing.api import LedgerEntryOutput, entry_body
from billing.api_kit import as_time, money
from config.errors import ErrorCode, RequestRejected
from config.filters import UtcIsoDateTimeField
from config.lists import QUERY_ERRORS, query_params_validate
from config.openapi import raises
from pricing.exceptions import CreditTypeNotFound
from pricing.selectors import credit_type_get

FORMATS = ("json", "csv")


class CsvRenderer(BaseRenderer):
    """Names text/csv for content negotiation; the view streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:  # pragma: no cover - unused
        return b""


def _time_param(request, name: str):
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = UtcIsoDateTimeField().clean(raw)
    except forms.ValidationError as exc:
        raise serializers.ValidationError({name: [serializers.ErrorDetail(exc.messages[0], code="invalid")]}) from exc
    if value is None or value.tzinfo is None:
        raise serializers.ValidationError(
            {name: [serializers.ErrorDetail("An ISO 8601 date-time with a UTC offset.", code="invalid")]}
        )
    return value


class StatementOutput(serializers.Serializer):
    object = serializers.CharField(help_text='"statement".')
    account = serializers.CharField()
    credit_type = serializers.CharField()
    period_from = serializers.DateTimeField(allow_null=True, help_text="Inclusive; null: from the first entry.")
    period_to = serializers.DateTimeField(allow_null=True, help_text="Exclusive; null: up to now.")
    opening_balance = serializers.CharField(help_text="balance_after of the last entry before the period.")
    closing_balance = serializers.CharField(help_text="Opening balance plus every entry of the period.")
    entry_count = serializers.IntegerField()
    chain_verified = serializers.BooleanField(
        help_text="Every entry's hash verifies over its fields and the previous entry's hash, under a configured "
        "key, and each balance_after is the previous plus its amount."
    )
    entries = LedgerEntryOutput(many=True)


class AccountStatementView(APIView):
    """An account's statement: opening balance, every entry of the period, closing balance, chain verified."""

    renderer_classes = [JSONRenderer, CsvRenderer]

    def perform_content_negotiation(self, request, force=False):
        # `format` is ours to validate: DRF would answer an unknown one with 404.
        fmt = request.query_params.get("format")
        if fmt is not None and fmt not in FORMATS and not force:
            raise RequestRejected("validation_error", "format must be json or csv.", param="format")
        return super().perform_content_negotiation(request, force=force)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # Errors are JSON whatever was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    @extend_schema(
        operation_id="accounts_statement",
        parameters=[
            OpenApiParameter(name="credit_type", type=str, required=False, description="Default: the default."),
            OpenApiParameter(
                name="from", type=OpenApiTypes.DATETIME, required=False, description="Period start, inclusive."
            ),
            OpenApiParameter(
                name="to", type=OpenApiTypes.DATETIME, required=False, description="Period end, exclusive."
            ),
            OpenApiParameter(
                name="format",
                type=str,
                enum=list(FORMATS),
                required=False,
                description="csv: the same statement as a CSV download (or send Accept: text/csv).",
            ),
        ],
        responses={
            (200, "application/json"): StatementOutput,
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description=f"Columns {', '.join(CSV_COLUMNS)}: an opening line, one line per entry, a closing line.",
            ),
        },
    )
    @raises(*QUERY_ERRORS, ErrorCode(400, "statement_too_large"), AccountNotFound, CreditTypeNotFound)
    def get(self, request, account_id: str):
        query_params_validate(request, ("credit_type", "from", "to", "format"))
        start, end = _time_param(request, "from"), _time_param(request, "to")
        account = account_get_for_key(api_key=request.auth, public_id=account_id)
        credit_type = credit_type_get(request.query_params.get("credit_type"))
        statement = AccountStatement(account=account, credit_type=credit_type, start=start, end=end)
        if request.accepted_renderer.format == "csv":
            response = StreamingHttpResponse(statement_csv_lines(statement), content_type="text/csv; charset=utf-8")
            name = f"statement-{account.public_id}-{credit_type.code}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        if statement.count_entries(STATEMENT_MAX_ENTRIES) > STATEMENT_MAX_ENTRIES:
            raise RequestRejected(
                "statement_too_large",
                f"The period has more than {STATEMENT_MAX_ENTRIES} entries: ask for CSV or a shorter period.",
            )
        entries = [entry_body(entry) for entry in statement.entries()]
        return Response(
            {
                "object": "statement",
                "account": account.public_id,
                "credit_type": credit_type.code,
                "period_from": as_time(start) if start else None,
                "period_to": as_time(end) if end else None,
                "opening_balance": money(statement.opening, credit_type),
                "closing_balance": money(statement.closing, credit_type),
                "entry_count": statement.count,
                "chain_verified": statement.chain_verified,
                "entries": entries,
            }
        )
