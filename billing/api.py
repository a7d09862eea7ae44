"""REST API v1 for the ledger: grants, charges, balances, transactions.

Thin views: parse and validate input, call a service, serialise the result.
Money-moving POSTs are `MoneyPostView`s (billing/api_kit.py).
"""

from __future__ import annotations

from decimal import Decimal

import django_filters
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import AccountNotFound, AccountSuspended
from accounts.models import Account
from accounts.permissions import IsServiceKey
from accounts.selectors import account_get_for_key
from billing import services
from billing.api_kit import IDEMPOTENCY_HEADER, MoneyPostView, StrictListView, as_time, money, resolve_account
from billing.balance_cache import balance_display
from billing.exceptions import AmountTooLarge, DailyLimitExceeded, InsufficientCredits
from billing.fields import AmountField, MetadataField, check_scale, text_field
from billing.models import LedgerEntry
from billing.selectors import (
    ledger_entries_for_account,
    lots_expiring_for_account,
    wallets_for_account,
)
from config.errors import LockTimeout
from config.filters import UtcIsoDateTimeFilter
from config.lists import QUERY_ERRORS, query_params_validate
from config.money import decimal_text
from config.openapi import raises
from config.serializers import InputSerializer
from pricing.api import PricedUsageInput, priced_usage_validate
from pricing.exceptions import CreditTypeNotFound, PriceNotConfigured, PricingAnomaly
from pricing.selectors import credit_type_get
from pricing.services import price_quote

BALANCE_SOURCE_HEADER = "Balance-Source"


class LedgerEntryOutput(serializers.Serializer):
    """A ledger entry as the API shows it."""

    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    account = serializers.CharField(source="account.public_id")
    credit_type = serializers.CharField(source="credit_type.code")
    kind = serializers.CharField()
    amount = serializers.SerializerMethodField()
    balance_after = serializers.SerializerMethodField()
    related_entry = serializers.SerializerMethodField()
    task_id = serializers.CharField()
    route = serializers.CharField()
    description = serializers.CharField()
    metadata = serializers.JSONField()
    idempotency_key = serializers.CharField()
    created_at = serializers.DateTimeField()
    pricing = serializers.SerializerMethodField()

    def get_object(self, entry) -> str:
        return "ledger_entry"

    def get_pricing(self, entry) -> dict | None:
        """What a priced charge was priced by (null for an explicit amount)."""
        return entry_pricing(entry)

    def get_amount(self, entry) -> str:
        return money(entry.amount, entry.credit_type)

    def get_balance_after(self, entry) -> str:
        return money(entry.balance_after, entry.credit_type)

    def get_related_entry(self, entry) -> str | None:
        return entry.related_entry.public_id if entry.related_entry_id else None


def entry_pricing(entry: LedgerEntry) -> dict | None:
    if not entry.price_source:
        return None
    return {
        "key": entry.price_key,
        "resolved_key": entry.resolved_key,
        "price_version": entry.price_version.public_id if entry.price_version_id else None,
        "version": entry.price_version.version if entry.price_version_id else None,
        "source": entry.price_source,
        "unit_prices": unit_prices_text(entry.unit_prices),
        "usage": entry.usage,
    }


def unit_prices_text(stored: dict | None) -> dict | None:
    """Unit prices as every body shows them (`decimal_text`); entries stored before kept nine places."""
    if not stored:
        return stored
    return {name: value if name == "unit_name" else decimal_text(Decimal(value)) for name, value in stored.items()}


def entry_body_keep(entry: LedgerEntry, body: dict) -> dict:
    """Keep `body` on the new `entry` for `entry_body` to return: entries are immutable, their body is too."""
    entry.__dict__["_api_body"] = body
    return body


def entry_body(entry: LedgerEntry) -> dict:
    """What `LedgerEntryOutput` renders, built directly.

    Every charge, grant and refund answers with one of these: instantiating
    the serializer (DRF deep-copies its declared fields per instance) cost
    more than the charge's own SQL (docs/performance.md). The serializer
    stays the schema (and serves lists); a test holds the two equal. An
    entry's posting may have built it already for its event (`entry_body_keep`).
    """
    kept = entry.__dict__.get("_api_body")
    if kept is not None:
        return kept
    credit_type = entry.credit_type
    return {
        "id": entry.public_id,
        "object": "ledger_entry",
        "account": entry.account.public_id,
        "credit_type": credit_type.code,
        "kind": str(entry.kind),
        "amount": money(entry.amount, credit_type),
        "balance_after": money(entry.balance_after, credit_type),
        "related_entry": entry.related_entry.public_id if entry.related_entry_id else None,
        "task_id": entry.task_id,
        "route": entry.route,
        "description": entry.description,
        "metadata": entry.metadata,
        "idempotency_key": entry.idempotency_key,
        "created_at": as_time(entry.created_at),
        "pricing": entry_pricing(entry),
    }


class MoneyMovementInput(InputSerializer):
    """Fields shared by grants and charges; resolves account and credit type."""

    account = serializers.CharField(max_length=64, required=False)
    credit_type = serializers.CharField(max_length=32, required=False)
    amount = AmountField()
    task_id = text_field()
    metadata = MetadataField()

    def validate(self, attrs: dict) -> dict:
        request = self.context["request"]
        attrs["account"] = resolve_account(request, attrs.get("account"))
        attrs["credit_type"] = credit_type_get(attrs.get("credit_type"))
        check_scale(attrs, attrs["credit_type"].scale)
        return attrs


class GrantInput(MoneyMovementInput):
    reason = text_field(max_length=1000)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    priority = serializers.IntegerField(
        required=False, default=0, min_value=services.LOT_PRIORITY_MIN, max_value=services.LOT_PRIORITY_MAX
    )

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.", code="expires_at_past")
        return value


class ChargeInput(PricedUsageInput, MoneyMovementInput):
    """Either an explicit `amount`, or a price `key` and `usage` priced by the catalogue."""

    amount = AmountField(required=False)
    route = text_field()
    description = text_field(max_length=1000)

    def validate(self, attrs: dict) -> dict:
        return priced_usage_validate(super().validate(attrs), amount_allowed=True)


class GrantCreateView(MoneyPostView):
    """Add credits to an account (service keys only)."""

    permission_classes = [IsServiceKey]
    input_serializer = GrantInput
    api_errors = (AccountNotFound, CreditTypeNotFound, AmountTooLarge, LockTimeout)

    @extend_schema(
        operation_id="grants_create",
        request=GrantInput,
        responses={201: LedgerEntryOutput},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request):
        return super().post(request)

    def act(self, request, *, params, target, actor, idempotency_key):
        entry = services.grant_create(
            account=params["account"],
            credit_type=params["credit_type"],
            amount=params["amount"],
            reason=params["reason"],
            task_id=params["task_id"],
            metadata=params["metadata"],
            actor=actor,
            idempotency_key=idempotency_key,
            expires_at=params["expires_at"],
            priority=params["priority"],
        )
        return 201, entry_body(entry)


def zero_charge_body(result: services.ZeroCharge) -> dict:
    """The answer for a charge that moved no credits (a free key, or a flagged zero)."""
    anomaly_id = result.anomaly.public_id if result.anomaly else None
    return {"object": "zero_charge", "id": anomaly_id, **result.quote.as_json()}


class ChargeCreateView(MoneyPostView):
    """Charge an account for one action: 201 with the ledger entry, or 402."""

    input_serializer = ChargeInput
    # The pricing errors (422) are not declines: nothing is stored, a retry after the catalogue is fixed goes through.
    api_errors = (
        AccountNotFound,
        CreditTypeNotFound,
        AccountSuspended,
        InsufficientCredits,
        DailyLimitExceeded,
        PriceNotConfigured,
        PricingAnomaly,
        LockTimeout,
    )
    pipelined = True  # four round trips per charge (docs/performance.md, "Round trips")

    @extend_schema(
        operation_id="charges_create",
        request=ChargeInput,
        responses={201: LedgerEntryOutput},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request):
        return super().post(request)

    def act(self, request, *, params, target, actor, idempotency_key):
        quote = None
        if "key" in params:
            # Priced before charge_create takes the wallet lock.
            quote = price_quote(key=params["key"], usage=params["usage"], credit_type=params["credit_type"])
        result = services.charge_create(
            account=params["account"],
            credit_type=params["credit_type"],
            amount=params.get("amount"),
            quote=quote,
            task_id=params["task_id"],
            route=params["route"],
            description=params["description"],
            metadata=params["metadata"],
            actor=actor,
            idempotency_key=idempotency_key,
        )
        if isinstance(result, services.ZeroCharge):
            return 200, zero_charge_body(result)
        return 201, entry_body(result)


BalanceOutput = inline_serializer(
    name="Balance",
    fields={
        "account": serializers.CharField(),
        "balances": inline_serializer(
            name="WalletBalance",
            many=True,
            fields={
                "credit_type": serializers.CharField(),
                "balance": serializers.CharField(),
                "held": serializers.CharField(),
                "available": serializers.CharField(),
                "expiring": inline_serializer(
                    name="ExpiringCredits",
                    many=True,
                    fields={"amount": serializers.CharField(), "expires_at": serializers.DateTimeField()},
                ),
            },
        ),
    },
)


def balance_body(account: Account) -> dict:
    wallets = wallets_for_account(account)
    # Only wallets with lots can have anything expiring: skip the query otherwise.
    expiring = lots_expiring_for_account(account) if any(w.lot_balance for w in wallets) else {}
    balances = [
        {
            "credit_type": w.credit_type.code,
            "balance": money(w.balance, w.credit_type),
            "held": money(w.held, w.credit_type),
            "available": money(w.available, w.credit_type),
            "expiring": [
                {"amount": money(lot["amount"], w.credit_type), "expires_at": as_time(lot["expires_at"])}
                for lot in expiring.get(w.credit_type_id, [])
            ],
        }
        for w in wallets
    ]
    if not balances:
        default = credit_type_get()
        zero = money(Decimal(0), default)
        balances = [{"credit_type": default.code, "balance": zero, "held": zero, "available": zero, "expiring": []}]
    return {"account": account.public_id, "balances": balances}


class BalanceQueryInput(serializers.Serializer):
    refresh = serializers.BooleanField(default=False)


class AccountBalanceView(APIView):
    """Balance and available credits per credit type, for display.

    Served from the display cache (invalidated after every committed change
    to the account's wallets); `?refresh=true` reads the database. The
    `Balance-Source` header says which. Never use this to decide whether a
    charge can go ahead: the charge itself decides, from the locked wallet.
    """

    @extend_schema(
        operation_id="accounts_balance",
        parameters=[
            OpenApiParameter(
                name="refresh", type=bool, required=False, description="true: read the database, not the cache."
            )
        ],
        responses={200: BalanceOutput},
    )
    @raises(*QUERY_ERRORS, AccountNotFound)
    def get(self, request, account_id: str):
        query_params_validate(request, ("refresh",))
        query = BalanceQueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        account = account_get_for_key(api_key=request.auth, public_id=account_id)
        body, source = balance_display(
            account=account.public_id, load=lambda: balance_body(account), refresh=query.validated_data["refresh"]
        )
        response = Response(body)
        response[BALANCE_SOURCE_HEADER] = source
        return response


class LedgerEntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=LedgerEntry.Kind.choices)
    task_id = django_filters.CharFilter(max_length=255)
    route = django_filters.CharFilter(max_length=255)
    credit_type = django_filters.CharFilter(field_name="credit_type__code", max_length=32)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = LedgerEntry
        fields = ["kind", "task_id", "route", "credit_type", "created_after", "created_before"]


class AccountTransactionsView(StrictListView):
    """An account's ledger, newest first, cursor-paginated."""

    serializer_class = LedgerEntryOutput
    filterset_class = LedgerEntryFilter
    queryset = LedgerEntry.objects.none()
    api_errors = (AccountNotFound,)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LedgerEntry.objects.none()
        account = account_get_for_key(api_key=self.request.auth, public_id=self.kwargs["account_id"])
        return ledger_entries_for_account(account)

    @extend_schema(operation_id="accounts_transactions")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
