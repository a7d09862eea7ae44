"""Money columns: one definition of how every amount is stored.

Amounts are `Decimal` in NUMERIC(MONEY_DIGITS, MONEY_PLACES) columns, so a
value is exact to 9 decimal places below 10**19; a credit type's `scale`
(0-9) narrows what its amounts may carry, and the services quantise to it.
Floats never touch money.
"""

from __future__ import annotations

from django.db import models

MONEY_DIGITS = 28
MONEY_PLACES = 9


def MoneyField(**kwargs) -> models.DecimalField:  # noqa: N802 - reads like a field class
    kwargs.setdefault("max_digits", MONEY_DIGITS)
    kwargs.setdefault("decimal_places", MONEY_PLACES)
    return models.DecimalField(**kwargs)
