"""The staff refund form: an optional amount, checked by money_parse at the charge's scale."""

import pytest

from refunds.forms import RefundChargeForm
from tests.factories import default_credit_type

pytestmark = pytest.mark.django_db


def errors(amount: str) -> list[str]:
    form = RefundChargeForm(
        {"amount": amount, "reason": "customer_service", "note": "ticket"}, credit_type=default_credit_type()
    )
    form.is_valid()
    return form.errors.get("amount", [])


def test_an_empty_amount_means_all_that_remains():
    assert errors("") == []


def test_a_negative_amount_is_refused():
    assert errors("-1.00") == ["Amount must be greater than zero."]


def test_more_places_than_the_credit_type_has_are_refused():
    assert errors("1.001") == ["At most 2 decimal places for credits."]
