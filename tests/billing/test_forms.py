"""The staff grant and adjustment forms: amounts are checked by money_parse and shown as form errors."""

import pytest

from billing.forms import AdjustBalanceForm, GrantCreditsForm
from tests.factories import default_credit_type

pytestmark = pytest.mark.django_db


def errors(form_class, amount: str) -> list[str]:
    form = form_class({"credit_type": default_credit_type().code, "amount": amount, "reason": "test"})
    form.is_valid()
    return form.errors.get("amount", [])


def test_grant_takes_a_positive_amount_at_the_scale():
    assert errors(GrantCreditsForm, "12.50") == []


def test_grant_refuses_zero():
    assert errors(GrantCreditsForm, "0") == ["Amount must be greater than zero."]


def test_grant_refuses_more_places_than_the_credit_type_has():
    assert errors(GrantCreditsForm, "1.005") == ["At most 2 decimal places for credits."]


def test_adjustment_takes_a_negative_amount():
    assert errors(AdjustBalanceForm, "-2.50") == []


def test_adjustment_refuses_zero():
    assert errors(AdjustBalanceForm, "0.00") == ["Amount must not be zero."]


def test_adjustment_refuses_more_places_than_the_credit_type_has():
    assert errors(AdjustBalanceForm, "-1.005") == ["At most 2 decimal places for credits."]
