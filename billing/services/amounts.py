"""Amounts a client or staff user sends: parsed once, before any lock is taken."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from billing.core import BALANCE_CEILING
from billing.exceptions import InvalidAmount
from pricing.models import CreditType


def amount_validate(amount: Any, credit_type: CreditType) -> Decimal:
    """A finite, positive Decimal with no more places than the credit type's scale."""
    if isinstance(amount, float | bool) or not isinstance(amount, Decimal | int | str):
        raise InvalidAmount('Amount must be a decimal string such as "12.50".')
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount() from exc
    if not value.is_finite():
        raise InvalidAmount("Amount must be finite.")
    if value <= 0:
        raise InvalidAmount("Amount must be greater than zero.")
    if value >= BALANCE_CEILING:
        raise InvalidAmount("Amount is too large.")
    if value != value.quantize(credit_type.quantum):  # "1.50" is fine at scale 1; "1.55" is not
        raise InvalidAmount(f"Amount has more than {credit_type.scale} decimal places allowed for {credit_type.code}.")
    return value.quantize(credit_type.quantum)


def capture_amount_validate(amount: Any, credit_type: CreditType) -> Decimal:
    """Like `amount_validate`, but zero is allowed: a job that used nothing captures 0."""
    if isinstance(amount, Decimal | int | str) and not isinstance(amount, bool):
        try:
            if Decimal(amount) == 0:
                return Decimal(0).quantize(credit_type.quantum)
        except (InvalidOperation, ValueError):
            pass
    return amount_validate(amount, credit_type)


def signed_amount_validate(amount: Any, credit_type: CreditType) -> Decimal:
    """A non-zero signed amount (an adjustment) whose magnitude passes `amount_validate`."""
    try:
        signed = Decimal(amount) if isinstance(amount, str | int | Decimal) and not isinstance(amount, bool) else amount
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount("Adjustment must be a non-zero decimal.") from exc
    if not isinstance(signed, Decimal) or not signed.is_finite() or signed == 0:
        raise InvalidAmount("Adjustment must be a non-zero decimal.")
    magnitude = amount_validate(abs(signed), credit_type)
    return magnitude if signed > 0 else -magnitude
