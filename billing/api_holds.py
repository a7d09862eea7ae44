"""REST API v1 for holds: reserve credits, then capture or release them.

A client app opens a hold before a long or streaming job, captures the final
cost when the job reports it, or releases the hold when the job fails. A
hold nobody resolves is expired by the sweep (`billing.tasks.expire_holds`)
according to its `on_expiry`. Its POSTs are `MoneyPostView`s.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import AccountNotFound, AccountSuspended
from billing import services
from billing.api_kit import IDEMPOTENCY_HEADER, MoneyPostView, StrictListView, as_time, money, resolve_account
from billing.exceptions import (
    DailyLimitExceeded,
    HoldNotFound,
    HoldNotPending,
    HoldOwnedByAnotherKey,
    HoldOwnedByService,
    InsufficientCredits,
    InvalidAmount,
    InvalidExpiresIn,
)
from billing.fields import AmountField, MetadataField, check_scale, text_field
from billing.models import Hold
from billing.selectors import hold_get_for_key, hold_get_to_resolve, holds_for_account
from config.errors import LockTimeout
from config.lists import QUERY_ERRORS, query_params_validate
from config.openapi import raises
from config.serializers import InputSerializer
from pricing.api import UsageField
from pricing.exceptions import CreditTypeNotFound, InvalidPriceKey, PriceNotConfigured, PricingAnomaly
from pricing.selectors import credit_type_get


class HoldOutput(serializers.Serializer):
    """A hold as the API shows it."""

    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    account = serializers.CharField(source="account.public_id")
    credit_type = serializers.CharField(source="credit_type.code")
    status = serializers.CharField()
    amount = serializers.SerializerMethodField()
    captured_amount = serializers.SerializerMethodField()
    requested_amount = serializers.SerializerMethodField()
    on_expiry = serializers.CharField()
    expires_at = serializers.DateTimeField()
    price_key = serializers.CharField()
    estimated_usage = serializers.JSONField(allow_null=True)
    capture_usage = serializers.JSONField(allow_null=True)
    price_version = serializers.CharField()
    task_id = serializers.CharField()
    route = serializers.CharField()
    metadata = serializers.JSONField()
    release_reason = serializers.CharField()
    capture_entry = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)

    def get_object(self, hold) -> str:
        return "hold"

    def get_amount(self, hold) -> str:
        return money(hold.amount, hold.credit_type)

    def get_captured_amount(self, hold) -> str:
        return money(hold.captured_amount, hold.credit_type)

    def get_requested_amount(self, hold) -> str | None:
        return None if hold.requested_amount is None else money(hold.requested_amount, hold.credit_type)

    def get_capture_entry(self, hold) -> str | None:
        return hold.capture_entry.public_id if hold.capture_entry_id else None


def _text(value) -> str | None:
    return None if value is None else str(value)


def _time(value) -> str | None:
    return None if value is None else as_time(value)


def hold_body(hold: Hold) -> dict:
    """What `HoldOutput` renders, built directly (as `entry_body`; a test holds the two equal)."""
    credit_type = hold.credit_type
    return {
        "id": hold.public_id,
        "object": "hold",
        "account": hold.account.public_id,
        "credit_type": credit_type.code,
        "status": _text(hold.status),
        "amount": money(hold.amount, credit_type),
        "captured_amount": money(hold.captured_amount, credit_type),
        "requested_amount": None if hold.requested_amount is None else money(hold.requested_amount, credit_type),
        "on_expiry": _text(hold.on_expiry),
        "expires_at": _time(hold.expires_at),
        "price_key": _text(hold.price_key),
        "estimated_usage": hold.estimated_usage,
        "capture_usage": hold.capture_usage,
        "price_version": _text(hold.price_version),
        "task_id": _text(hold.task_id),
        "route": _text(hold.route),
        "metadata": hold.metadata,
        "release_reason": _text(hold.release_reason),
        "capture_entry": hold.capture_entry.public_id if hold.capture_entry_id else None,
        "created_at": _time(hold.created_at),
        "resolved_at": _time(hold.resolved_at),
    }


class HoldCreateInput(InputSerializer):
    account = serializers.CharField(max_length=64, required=False)
    credit_type = serializers.CharField(max_length=32, required=False)
    amount = AmountField(required=False)
    price_key = text_field()
    estimated_usage = UsageField(required=False)
    expires_in = serializers.IntegerField(required=False, min_value=1)
    on_expiry = serializers.ChoiceField(choices=Hold.OnExpiry.choices, default=Hold.OnExpiry.RELEASE)
    task_id = text_field()
    route = text_field()
    metadata = MetadataField()

    def validate(self, attrs: dict) -> dict:
        attrs["account"] = resolve_account(self.context["request"], attrs.get("account"))
        attrs["credit_type"] = credit_type_get(attrs.get("credit_type"))
        check_scale(attrs, attrs["credit_type"].scale)
        if "amount" not in attrs and (not attrs.get("price_key") or attrs.get("estimated_usage") is None):
            raise serializers.ValidationError(
                {"amount": [serializers.ErrorDetail("Give amount, or price_key with estimated_usage.", "required")]}
            )
        return attrs


class HoldCaptureInput(InputSerializer):
    amount = AmountField(allow_zero=True, required=False)
    usage = UsageField(required=False)
    metadata = MetadataField()

    def validate(self, attrs: dict) -> dict:
        if ("amount" in attrs) == (attrs.get("usage") is not None):
            raise serializers.ValidationError(
                {"amount": [serializers.ErrorDetail("Give either amount or usage.", "required")]}
            )
        return attrs


class HoldReleaseInput(InputSerializer):
    reason = text_field(max_length=1000)


class HoldCreateView(MoneyPostView):
    """Reserve credits for a job: 201 with the hold, or 402 if they are not available."""

    input_serializer = HoldCreateInput
    # `price_key` is priced when given (422 if it cannot be), and is free text until then (400 invalid_price_key);
    # an estimate that prices to zero holds nothing (400 invalid_amount).
    api_errors = (
        AccountNotFound,
        CreditTypeNotFound,
        AccountSuspended,
        InsufficientCredits,
        DailyLimitExceeded,
        InvalidAmount,
        InvalidExpiresIn,
        InvalidPriceKey,
        PriceNotConfigured,
        PricingAnomaly,
        LockTimeout,
    )

    @extend_schema(
        operation_id="holds_create",
        request=HoldCreateInput,
        responses={201: HoldOutput},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request):
        return super().post(request)

    def act(self, request, *, params, target, actor, idempotency_key):
        hold = services.hold_create(
            account=params["account"],
            credit_type=params["credit_type"],
            amount=params.get("amount"),
            price_key=params["price_key"],
            # The hold keeps the usage object as the client sent it (UsageField has checked it).
            estimated_usage=request.data.get("estimated_usage"),
            expires_in=params.get("expires_in"),
            on_expiry=params["on_expiry"],
            task_id=params["task_id"],
            route=params["route"],
            metadata=params["metadata"],
            actor=actor,
            idempotency_key=idempotency_key,
        )
        return 201, hold_body(hold)


class HoldDetailView(APIView):
    @extend_schema(operation_id="holds_retrieve", responses={200: HoldOutput})
    @raises(*QUERY_ERRORS, HoldNotFound)
    def get(self, request, hold_id: str):
        query_params_validate(request, ())
        return Response(hold_body(hold_get_for_key(api_key=request.auth, public_id=hold_id)))


class _HoldTransitionView(MoneyPostView):
    api_errors = (HoldNotFound, HoldOwnedByService, HoldOwnedByAnotherKey, HoldNotPending, LockTimeout)

    def target(self, request, *, hold_id: str) -> Hold:
        # 404 for another account's hold, 403 for one this key did not open.
        return hold_get_to_resolve(api_key=request.auth, public_id=hold_id)


class HoldCaptureView(_HoldTransitionView):
    """Charge the final cost (an amount, or usage priced by the catalogue) and free the rest.

    Capturing more than the hold takes the extra from available credits; if
    the wallet cannot cover it all, the capture takes what there is and
    reports `requested_amount` > `captured_amount`. 409 hold_not_pending if
    the hold was already released or expired (or captured with another amount).
    """

    input_serializer = HoldCaptureInput
    api_errors = (PriceNotConfigured, PricingAnomaly)  # a capture by usage is priced with the hold's key

    @extend_schema(
        operation_id="holds_capture",
        request=HoldCaptureInput,
        responses={200: HoldOutput},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request, hold_id: str):
        return super().post(request, hold_id=hold_id)

    def act(self, request, *, params, target, actor, idempotency_key):
        captured = services.hold_capture(
            hold=target,
            amount=params.get("amount"),
            usage=request.data.get("usage"),
            metadata=params["metadata"],
            actor=actor,
            idempotency_key=idempotency_key,
        )
        return 200, hold_body(captured)


class HoldReleaseView(_HoldTransitionView):
    """Free the whole hold without charging. 409 hold_not_pending if it was captured or expired."""

    input_serializer = HoldReleaseInput

    @extend_schema(
        operation_id="holds_release",
        request=HoldReleaseInput,
        responses={200: HoldOutput},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request, hold_id: str):
        return super().post(request, hold_id=hold_id)

    def act(self, request, *, params, target, actor, idempotency_key):
        released = services.hold_release(hold=target, reason=params["reason"], actor=actor)
        return 200, hold_body(released)


class HoldFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Hold.Status.choices)
    task_id = django_filters.CharFilter(max_length=255)
    credit_type = django_filters.CharFilter(field_name="credit_type__code", max_length=32)

    class Meta:
        model = Hold
        fields = ["status", "task_id", "credit_type"]


class AccountHoldsView(StrictListView):
    """An account's holds, newest first, cursor-paginated; filter by status."""

    serializer_class = HoldOutput
    filterset_class = HoldFilter
    queryset = Hold.objects.none()
    api_errors = (AccountNotFound,)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Hold.objects.none()
        account = resolve_account(self.request, self.kwargs["account_id"])
        return holds_for_account(account)

    @extend_schema(operation_id="accounts_holds")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
