"""Amounts a client or staff user sends: parsed once, before any lock is taken.

The rules are `config.money.money_parse`'s; these wrappers give a credit
type's scale and turn its `InvalidMoney` into `InvalidAmount` (400
invalid_amount) with the services' wording.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from billing.exceptions import InvalidAmount
from config.money import InvalidMoney, money_parse
from pricing.models import CreditType

_MESSAGES = {
    "not_a_decimal": 'Amount must be a decimal string such as "12.50".',
    "invalid_format": InvalidAmount.message,
    "not_finite": "Amount must be finite.",
    "not_positive": "Amount must be greater than zero.",
    "too_large": "Amount is too large.",
}
# An adjustment that is not a finite, non-zero decimal is refused in one sentence.
_NOT_AN_ADJUSTMENT = "Adjustment must be a non-zero decimal."
_SIGNED_MESSAGES = {
    **_MESSAGES,
    **dict.fromkeys(["not_a_decimal", "invalid_format", "not_finite", "zero"], _NOT_AN_ADJUSTMENT),
}


def _invalid(error: InvalidMoney, credit_type: CreditType, messages: dict[str, str]) -> InvalidAmount:
    if error.code == "too_many_decimals":
        return InvalidAmount(f"Amount has more than {credit_type.scale} decimal places allowed for {credit_type.code}.")
    return InvalidAmount(messages.get(error.code, error.message))


def amount_validate(amount: Any, credit_type: CreditType) -> Decimal:
    """A finite, positive Decimal with no more places than the credit type's scale."""
    try:
        return money_parse(amount, scale=credit_type.scale)
    except InvalidMoney as error:
        raise _invalid(error, credit_type, _MESSAGES) from error


def capture_amount_validate(amount: Any, credit_type: CreditType) -> Decimal:
    """Like `amount_validate`, but zero is allowed: a job that used nothing captures 0."""
    try:
        return money_parse(amount, scale=credit_type.scale, allow_zero=True)
    except InvalidMoney as error:
        raise _invalid(error, credit_type, _MESSAGES) from error


def signed_amount_validate(amount: Any, credit_type: CreditType) -> Decimal:
    """A non-zero signed amount (an adjustment) whose magnitude passes `amount_validate`."""
    try:
        return money_parse(amount, scale=credit_type.scale, signed=True)
    except InvalidMoney as error:
        raise _invalid(error, credit_type, _SIGNED_MESSAGES) from error
