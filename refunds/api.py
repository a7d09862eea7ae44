"""REST API v1 for refunds: refund a charge, an account's refund history, refund stats.

Refunding is for service keys only: an account key could otherwise spend and
refund its own charges. The client app's backend refunds a charge when the
work it paid for failed (seed 003: timeouts, backend failures, uncaught
exceptions) with the route and the error, so the stats show which routes fail.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import AccountNotFound
from accounts.permissions import IsServiceKey
from accounts.selectors import accounts_visible_to
from billing.api import LedgerEntryOutput
from billing.api_kit import IDEMPOTENCY_HEADER, MoneyPostView, StrictListView, money, resolve_account
from billing.exceptions import AmountTooLarge
from billing.fields import AmountField, MetadataField, text_field
from config.errors import LockTimeout
from config.filters import UtcIsoDateTimeFilter
from config.lists import QUERY_ERRORS, query_params_validate
from config.openapi import raises
from config.serializers import InputSerializer
from refunds import services
from refunds.exceptions import ChargeFullyRefunded, ChargeNotFound, NotACharge, RefundExceedsCharge
from refunds.models import RefundLog
from refunds.selectors import charge_get_for_key, refund_stats, refunds_filtered, refunds_for_account


class RefundOutput(serializers.Serializer):
    """A refund as the API shows it."""

    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    account = serializers.CharField(source="account.public_id")
    credit_type = serializers.CharField(source="credit_type.code")
    amount = serializers.SerializerMethodField()
    reason = serializers.CharField()
    api_route = serializers.CharField()
    error_message = serializers.CharField()
    charge = serializers.CharField(source="charge.public_id")
    refund_entry = LedgerEntryOutput()
    metadata = serializers.JSONField()
    actor = serializers.CharField(source="actor_display")
    created_at = serializers.DateTimeField()

    def get_object(self, log) -> str:
        return "refund"

    def get_amount(self, log) -> str:
        return money(log.amount, log.credit_type)


class RefundCreatedOutput(RefundOutput):
    charge_refundable = serializers.SerializerMethodField(help_text="What remains refundable of the charge.")

    def get_charge_refundable(self, log) -> str:
        return money(log.refundable_after, log.credit_type)


class RefundCreateInput(InputSerializer):
    amount = AmountField(required=False, help_text="Default: all that remains refundable.")
    reason = serializers.ChoiceField(choices=RefundLog.Reason.choices)
    api_route = text_field()
    error_message = text_field(max_length=10_000)
    metadata = MetadataField()


class ChargeRefundCreateView(MoneyPostView):
    """Refund a charge, wholly or in part: 201, or 409 if it would exceed what remains refundable."""

    permission_classes = [IsServiceKey]
    input_serializer = RefundCreateInput
    api_errors = (ChargeNotFound, NotACharge, RefundExceedsCharge, ChargeFullyRefunded, AmountTooLarge, LockTimeout)

    @extend_schema(
        operation_id="charges_refunds_create",
        request=RefundCreateInput,
        responses={201: RefundCreatedOutput},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request, charge_id: str):
        return super().post(request, charge_id=charge_id)

    def target(self, request, *, charge_id: str):
        return charge_get_for_key(api_key=request.auth, public_id=charge_id)

    def act(self, request, *, params, target, actor, idempotency_key):
        log = services.refund_issue(
            charge=target,
            amount=params.get("amount"),
            reason=params["reason"],
            api_route=params["api_route"],
            error_message=params["error_message"],
            metadata=params["metadata"],
            actor=actor,
            idempotency_key=idempotency_key,
        )
        return 201, dict(RefundCreatedOutput(log).data)


class RefundFilter(django_filters.FilterSet):
    reason = django_filters.ChoiceFilter(choices=RefundLog.Reason.choices)
    api_route = django_filters.CharFilter(max_length=255)
    credit_type = django_filters.CharFilter(field_name="credit_type__code", max_length=32)
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = RefundLog
        fields = ["reason", "api_route", "credit_type", "since", "until"]


class AccountRefundsView(StrictListView):
    """An account's refund history, newest first, cursor-paginated."""

    serializer_class = RefundOutput
    filterset_class = RefundFilter
    queryset = RefundLog.objects.none()
    api_errors = (AccountNotFound,)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RefundLog.objects.none()
        account = resolve_account(self.request, self.kwargs["account_id"])
        return refunds_for_account(account)

    @extend_schema(operation_id="accounts_refunds")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RefundStatsInput(serializers.Serializer):
    api_route = serializers.CharField(max_length=255, required=False)
    credit_type = serializers.CharField(max_length=32, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


_StatsRow = {
    "credit_type": serializers.CharField(),
    "count": serializers.IntegerField(),
    "total_amount": serializers.CharField(),
}
RefundStatsOutput = inline_serializer(
    name="RefundStats",
    fields={
        "count": serializers.IntegerField(),
        "by_credit_type": inline_serializer(name="RefundStatsByType", many=True, fields=_StatsRow),
        "by_reason": inline_serializer(
            name="RefundStatsByReason", many=True, fields={"reason": serializers.CharField(), **_StatsRow}
        ),
        "by_route": inline_serializer(
            name="RefundStatsByRoute", many=True, fields={"api_route": serializers.CharField(), **_StatsRow}
        ),
    },
)


class RefundStatsView(APIView):
    """Count and total refunded, by credit type, reason and route, over the accounts this key may see.

    Amounts are totalled per credit type: credits of different types do not add up.
    """

    @extend_schema(
        operation_id="refunds_stats",
        parameters=[
            OpenApiParameter("api_route", str, required=False),
            OpenApiParameter("credit_type", str, required=False),
            OpenApiParameter("since", str, required=False, description="ISO 8601, inclusive"),
            OpenApiParameter("until", str, required=False, description="ISO 8601, exclusive"),
        ],
        responses={200: RefundStatsOutput},
    )
    @raises(*QUERY_ERRORS)
    def get(self, request):
        query_params_validate(request, RefundStatsInput._declared_fields)
        data = RefundStatsInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        queryset = RefundLog.objects.all()
        if not request.auth.is_service:
            queryset = queryset.filter(account__in=accounts_visible_to(request.auth))
        queryset = refunds_filtered(queryset, **data.validated_data)
        return Response(refund_stats(queryset))
