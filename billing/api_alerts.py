"""REST API v1 for balance alerts: a wallet's low-balance threshold (billing/alerts.py)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.exceptions import AccountNotFound
from accounts.permissions import IsServiceKey
from accounts.selectors import account_get_for_key
from billing.alerts import low_balance_threshold, wallet_alerts_set
from billing.api_kit import money
from billing.exceptions import InvalidAmount
from billing.fields import text_field
from config.lists import QUERY_ERRORS, query_params_validate
from config.openapi import raises
from config.serializers import InputSerializer
from pricing.exceptions import CreditTypeNotFound
from pricing.selectors import credit_type_get


class AlertsInput(InputSerializer):
    credit_type = text_field(max_length=32, required=False, help_text="Default: the default credit type.")
    low_balance = serializers.CharField(
        max_length=64,
        allow_null=True,
        help_text="Threshold at the credit type's scale (\"0\" allowed); null: the credit type's default from "
        "settings (CREDITLEDGER_LOW_BALANCE_DEFAULTS), if any.",
    )


class AlertsOutput(serializers.Serializer):
    object = serializers.CharField(help_text='Always "balance_alerts".')
    account = serializers.CharField()
    credit_type = serializers.CharField()
    low_balance = serializers.CharField(allow_null=True, help_text="The threshold in force; null: no alert.")
    low_balance_source = serializers.ChoiceField(choices=["wallet", "default", "none"])
    armed = serializers.BooleanField(help_text="Whether balance.low fires on the next fall to the threshold.")


class AccountAlertsView(APIView):
    """Set a wallet's low-balance threshold: balance.low fires once each time available falls to or below it."""

    permission_classes = [IsServiceKey]

    @extend_schema(operation_id="accounts_alerts_update", request=AlertsInput, responses={200: AlertsOutput})
    @raises(*QUERY_ERRORS, AccountNotFound, CreditTypeNotFound, InvalidAmount)  # low_balance: an amount
    def put(self, request, account_id: str):
        query_params_validate(request, ())
        account = account_get_for_key(api_key=request.auth, public_id=account_id)
        params = AlertsInput(data=request.data)
        params.is_valid(raise_exception=True)
        credit_type = credit_type_get(params.validated_data.get("credit_type"))
        wallet = wallet_alerts_set(
            account=account, credit_type=credit_type, low_balance=params.validated_data["low_balance"]
        )
        threshold = low_balance_threshold(wallet, credit_type)
        return Response(
            {
                "object": "balance_alerts",
                "account": account.public_id,
                "credit_type": credit_type.code,
                "low_balance": None if threshold is None else money(threshold, credit_type),
                "low_balance_source": "wallet"
                if wallet.low_balance is not None
                else ("default" if threshold is not None else "none"),
                "armed": wallet.low_balance_armed,
            }
        )
