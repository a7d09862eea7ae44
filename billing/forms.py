"""Admin forms for the staff grant and adjustment actions on accounts (billing.admin)."""

from decimal import Decimal

from django import forms

from pricing.models import CreditType


class GrantCreditsForm(forms.Form):
    credit_type = forms.ModelChoiceField(queryset=CreditType.objects.all(), to_field_name="code")
    amount = forms.DecimalField(min_value=Decimal("0"), max_digits=28, decimal_places=9)
    reason = forms.CharField(max_length=1000, widget=forms.TextInput(attrs={"size": 60}))

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount <= 0:
            raise forms.ValidationError("Amount must be greater than zero.")
        return amount

    def clean(self):
        cleaned = super().clean()
        credit_type, amount = cleaned.get("credit_type"), cleaned.get("amount")
        if credit_type and amount is not None and amount != amount.quantize(credit_type.quantum):
            self.add_error("amount", f"At most {credit_type.scale} decimal places for {credit_type.code}.")
        return cleaned


class AdjustBalanceForm(forms.Form):
    credit_type = forms.ModelChoiceField(queryset=CreditType.objects.all(), to_field_name="code")
    amount = forms.DecimalField(
        max_digits=28, decimal_places=9, help_text="Signed: negative removes credits, positive adds them."
    )
    reason = forms.CharField(max_length=1000, widget=forms.TextInput(attrs={"size": 60}))
