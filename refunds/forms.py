"""Admin forms for staff refunds and the refund stats page."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.utils import timezone

from billing.forms import amount_clean
from config.money import MONEY_DIGITS, MONEY_PLACES
from pricing.models import CreditType
from refunds.models import RefundLog


class RefundChargeForm(forms.Form):
    amount = forms.DecimalField(
        required=False,
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
        help_text="Leave empty to refund all that remains refundable.",
    )
    reason = forms.ChoiceField(choices=RefundLog.Reason.choices, initial=RefundLog.Reason.CUSTOMER_SERVICE)
    note = forms.CharField(
        max_length=1000, widget=forms.TextInput(attrs={"size": 60}), help_text="Why; kept in the refund log."
    )

    def __init__(self, *args, credit_type: CreditType | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.credit_type = credit_type

    def clean_amount(self) -> Decimal | None:
        amount = self.cleaned_data["amount"]
        if amount is None:
            return None
        return amount_clean(amount, self.credit_type)


class RefundStatsForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive.")
    credit_type = forms.ModelChoiceField(
        queryset=CreditType.objects.all(), to_field_name="code", required=False, empty_label="All credit types"
    )

    def period(self) -> tuple:
        """(since, until) as aware datetimes: until is exclusive (the day after the chosen one)."""
        today = timezone.localdate()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        since = data.get("since") or today - timedelta(days=29)
        until = data.get("until") or today
        start = timezone.make_aware(datetime.combine(since, time.min))
        end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))
        return since, until, start, end
