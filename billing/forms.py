"""Admin forms for the staff grant and adjustment actions on accounts (billing.admin).

A form's DecimalField reads the text (and keeps to the column's digits);
the amount rules are `config.money.money_parse`'s, through `amount_clean`,
so staff see a form error rather than a refusal from the service.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django import forms

from config.money import MONEY_DIGITS, MONEY_PLACES, InvalidMoney, money_parse
from pricing.models import CreditType


def amount_clean(amount: Decimal, credit_type: CreditType | None = None, *, signed: bool = False) -> Decimal:
    """`amount` checked by `money_parse` (at the credit type's scale if given), or a form ValidationError."""
    try:
        return money_parse(amount, scale=credit_type.scale if credit_type else None, signed=signed)
    except InvalidMoney as error:
        message = error.message
        if error.code == "too_many_decimals":
            message = f"At most {credit_type.scale} decimal places for {credit_type.code}."
        raise forms.ValidationError(message, code=error.code) from error


class GrantCreditsForm(forms.Form):
    credit_type = forms.ModelChoiceField(queryset=CreditType.objects.all(), to_field_name="code")
    amount = forms.DecimalField(min_value=Decimal("0"), max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    reason = forms.CharField(max_length=1000, widget=forms.TextInput(attrs={"size": 60}))

    def clean_amount(self) -> Decimal:
        return amount_clean(self.cleaned_data["amount"])

    def clean(self):
        cleaned = super().clean()
        credit_type, amount = cleaned.get("credit_type"), cleaned.get("amount")
        if credit_type and amount is not None:
            try:
                amount_clean(amount, credit_type)
            except forms.ValidationError as error:
                self.add_error("amount", error)
        return cleaned


class AdjustBalanceForm(forms.Form):
    credit_type = forms.ModelChoiceField(queryset=CreditType.objects.all(), to_field_name="code")
    amount = forms.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
        help_text="Signed: negative removes credits, positive adds them.",
    )
    reason = forms.CharField(max_length=1000, widget=forms.TextInput(attrs={"size": 60}))

    def clean(self):
        cleaned = super().clean()
        credit_type, amount = cleaned.get("credit_type"), cleaned.get("amount")
        if credit_type and amount is not None:
            try:
                amount_clean(amount, credit_type, signed=True)
            except forms.ValidationError as error:
                self.add_error("amount", error)
        return cleaned


class StatementForm(forms.Form):
    """The account page's statement download: a credit type and an optional period of whole days (UTC)."""

    credit_type = forms.ModelChoiceField(queryset=CreditType.objects.all(), to_field_name="code")
    date_from = forms.DateField(required=False, label="From")
    date_to = forms.DateField(required=False, label="To (inclusive)")

    def period(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) in UTC: `date_from` at midnight, the day after `date_to` at midnight."""
        start, end = self.cleaned_data.get("date_from"), self.cleaned_data.get("date_to")
        return (
            datetime.combine(start, time.min, tzinfo=UTC) if start else None,
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end else None,
        )


class LowBalanceForm(forms.Form):
    """The wallet admin's "Set low-balance alert" action (billing.alerts.wallet_alerts_set)."""

    low_balance = forms.DecimalField(
        required=False,
        min_value=Decimal("0"),
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
        help_text="balance.low fires when available falls to or below this; empty: the credit type's default.",
    )
