"""REST API v1 for payments: credit packs, Checkout Sessions, auto-recharge settings, portal links."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import AccountNotFound
from accounts.selectors import account_get_for_key
from billing.api_kit import IDEMPOTENCY_HEADER, MoneyPostView, as_time, money, resolve_account
from billing.fields import AmountField, check_scale
from billing.models import Wallet
from config.lists import QUERY_ERRORS, list_body, query_params_validate
from config.openapi import raises
from config.serializers import InputSerializer
from payments import portal
from payments.exceptions import InvalidAutoRecharge, PackNotFound, PaymentProviderError, PaymentsNotConfigured
from payments.models import AutoRecharge, CreditPack, Purchase
from payments.selectors import pack_get_active, packs_active
from payments.services import auto_recharge, purchases
from pricing.exceptions import CreditTypeNotFound
from pricing.selectors import credit_type_get


class PackOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    name = serializers.CharField()
    credit_type = serializers.CharField(source="credit_type.code")
    credits = serializers.SerializerMethodField()
    price = serializers.IntegerField(
        source="price_minor",
        help_text="In the currency's minor unit, as Stripe counts it (cents for usd, yen for jpy).",
    )
    currency = serializers.CharField()

    def get_object(self, pack) -> str:
        return "credit_pack"

    def get_credits(self, pack: CreditPack) -> str:
        return money(pack.credits, pack.credit_type)


class PackListOutput(serializers.Serializer):
    object = serializers.CharField()
    data = PackOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class PackListView(APIView):
    """The credit packs on sale, cheapest first."""

    @extend_schema(operation_id="packs_list", responses={200: PackListOutput})
    @raises(*QUERY_ERRORS)
    def get(self, request):
        query_params_validate(request, ())
        return Response(list_body([PackOutput(pack).data for pack in packs_active()]))


class PurchaseOutput(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    object = serializers.SerializerMethodField()
    account = serializers.CharField(source="account.public_id")
    pack = serializers.CharField(source="pack.public_id", allow_null=True)
    credit_type = serializers.CharField(source="credit_type.code")
    credits = serializers.SerializerMethodField()
    amount = serializers.IntegerField(source="amount_minor", help_text="What is paid, in minor units.")
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=Purchase.Status.choices)
    checkout_url = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, purchase) -> str:
        return "purchase"

    def get_credits(self, purchase: Purchase) -> str:
        return money(purchase.credits, purchase.credit_type)


class CheckoutSessionInput(InputSerializer):
    account = serializers.CharField(max_length=64, required=False)
    pack = serializers.CharField(max_length=64)
    success_url = serializers.URLField(max_length=2000)
    cancel_url = serializers.URLField(max_length=2000)

    def validate(self, attrs: dict) -> dict:
        attrs["account"] = resolve_account(self.context["request"], attrs.get("account"))
        attrs["pack"] = pack_get_active(attrs["pack"])
        return attrs


class CheckoutSessionCreateView(MoneyPostView):
    """Open a Stripe Checkout Session (payment mode) for a credit pack: 201 with its `checkout_url`.

    Credits are granted when Stripe reports the payment (webhook), once.
    """

    input_serializer = CheckoutSessionInput
    # Stripe refused or could not be reached (502), or is not configured on this server (503).
    api_errors = (AccountNotFound, PackNotFound, PaymentProviderError, PaymentsNotConfigured)

    @extend_schema(
        operation_id="checkout_sessions_create",
        request=CheckoutSessionInput,
        responses={201: PurchaseOutput},
        parameters=[IDEMPOTENCY_HEADER],
    )
    def post(self, request):
        return super().post(request)

    def act(self, request, *, params, target, actor, idempotency_key):
        purchase = purchases.checkout_session_create(
            account=params["account"],
            pack=params["pack"],
            success_url=params["success_url"],
            cancel_url=params["cancel_url"],
            idempotency_key=idempotency_key,
        )
        return 201, dict(PurchaseOutput(purchase).data)


# --- auto-recharge -----------------------------------------------------------------


class AutoRechargeOutput(serializers.Serializer):
    object = serializers.SerializerMethodField()
    credit_type = serializers.CharField(source="wallet.credit_type.code")
    pack = serializers.CharField(source="pack.public_id")
    enabled = serializers.BooleanField()
    threshold = serializers.SerializerMethodField()
    amount = serializers.SerializerMethodField()
    target = serializers.SerializerMethodField()
    monthly_cap = serializers.IntegerField(source="monthly_cap_minor", help_text="Minor units per calendar month.")
    stripe_customer = serializers.CharField(source="stripe_customer_id")
    stripe_payment_method = serializers.CharField(source="stripe_payment_method_id")
    consecutive_failures = serializers.IntegerField()
    disabled_reason = serializers.CharField()

    def get_object(self, config) -> str:
        return "auto_recharge"

    def get_threshold(self, config: AutoRecharge) -> str:
        return money(config.threshold, config.wallet.credit_type)

    def get_amount(self, config: AutoRecharge) -> str | None:
        return None if config.amount is None else money(config.amount, config.wallet.credit_type)

    def get_target(self, config: AutoRecharge) -> str | None:
        return None if config.target is None else money(config.target, config.wallet.credit_type)


class AutoRechargeListOutput(serializers.Serializer):
    object = serializers.CharField()
    data = AutoRechargeOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class AutoRechargeInput(InputSerializer):
    credit_type = serializers.CharField(max_length=32, required=False)
    pack = serializers.CharField(max_length=64)
    enabled = serializers.BooleanField(required=False, default=True)
    threshold = AmountField()
    amount = AmountField(required=False)
    target = AmountField(required=False)
    monthly_cap = serializers.IntegerField(min_value=1, max_value=10**12)
    stripe_customer = serializers.RegexField(r"^cus_[A-Za-z0-9]{1,250}$", max_length=255)
    stripe_payment_method = serializers.RegexField(r"^(pm|card|src)_[A-Za-z0-9]{1,250}$", max_length=255)

    def validate(self, attrs: dict) -> dict:
        if ("amount" in attrs) == ("target" in attrs):
            raise serializers.ValidationError("Give either amount or target.", code="amount_or_target")
        attrs["credit_type"] = credit_type_get(attrs.get("credit_type"))
        for name in ("threshold", "amount", "target"):
            if name in attrs:
                check_scale(attrs, attrs["credit_type"].scale, field=name)
        attrs["pack"] = pack_get_active(attrs["pack"])
        return attrs


class AutoRechargeView(APIView):
    """An account's auto-recharge settings, per credit type: read them, or set one wallet's."""

    @extend_schema(operation_id="accounts_auto_recharge", responses={200: AutoRechargeListOutput})
    @raises(*QUERY_ERRORS, AccountNotFound)
    def get(self, request, account_id: str):
        query_params_validate(request, ())
        account = account_get_for_key(api_key=request.auth, public_id=account_id)
        configs = AutoRecharge.objects.filter(wallet__account=account).select_related("wallet__credit_type", "pack")
        return Response(list_body([AutoRechargeOutput(c).data for c in configs.order_by("id")]))

    @extend_schema(
        operation_id="accounts_auto_recharge_set", request=AutoRechargeInput, responses={200: AutoRechargeOutput}
    )
    @raises(AccountNotFound, CreditTypeNotFound, PackNotFound, InvalidAutoRecharge)
    def put(self, request, account_id: str):
        account = account_get_for_key(api_key=request.auth, public_id=account_id)
        data = AutoRechargeInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        params = data.validated_data
        Wallet.objects.bulk_create(
            [Wallet(account_id=account.pk, credit_type_id=params["credit_type"].pk)], ignore_conflicts=True
        )
        wallet = Wallet.objects.select_related("credit_type").get(account=account, credit_type=params["credit_type"])
        config = auto_recharge.auto_recharge_configure(
            wallet=wallet,
            pack=params["pack"],
            threshold=params["threshold"],
            amount=params.get("amount"),
            target=params.get("target"),
            monthly_cap_minor=params["monthly_cap"],
            stripe_customer_id=params["stripe_customer"],
            stripe_payment_method_id=params["stripe_payment_method"],
            enabled=params["enabled"],
        )
        return Response(AutoRechargeOutput(config).data)


# --- the customer portal -------------------------------------------------------------


class PortalSessionOutput(serializers.Serializer):
    object = serializers.CharField()
    account = serializers.CharField()
    url = serializers.CharField(help_text="A signed link to the account's portal page; give it to the end user.")
    expires_at = serializers.DateTimeField()


class PortalSessionCreateView(APIView):
    """A signed, expiring link to the account's customer portal (balance, usage, history, Buy credits)."""

    @extend_schema(operation_id="accounts_portal_sessions_create", request=None, responses={201: PortalSessionOutput})
    @raises(AccountNotFound)
    def post(self, request, account_id: str):
        account = account_get_for_key(api_key=request.auth, public_id=account_id)
        link = portal.portal_link_create(account=account)
        body = {
            "object": "portal_session",
            "account": account.public_id,
            "url": request.build_absolute_uri(link.path),
            "expires_at": as_time(link.expires_at),
        }
        return Response(body, status=201)
