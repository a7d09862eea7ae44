"""Money columns and the one parser every amount goes through.

Amounts are `Decimal` in NUMERIC(MONEY_DIGITS, MONEY_PLACES) columns, so a
value is exact to 9 decimal places below 10**19 (`MONEY_CEILING`); a credit
type's `scale` (0-9) narrows what its amounts may carry, and the services
quantise to it. Floats never touch money.

`money_parse` is the only place that turns input into an amount: the API's
fields, the admin forms and the services all call it and only translate its
`InvalidMoney` into their own error (a field error, a form error,
`InvalidAmount`), keeping their wording. Two modes:

* strict, for JSON: a string in plain decimal notation ("12.50"), no sign,
  exponent, NaN, Infinity or whitespace; a JSON number has already lost
  precision by the time we would see it;
* lenient, for Python callers: a `Decimal`, an `int` or anything
  `Decimal()` reads; never a float or a bool.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import models

MONEY_DIGITS = 28
MONEY_PLACES = 9
# Every amount, and every balance, stays below this: the column holds
# MONEY_DIGITS - MONEY_PLACES whole digits.
MONEY_CEILING = Decimal(10) ** (MONEY_DIGITS - MONEY_PLACES)

# At most 30 digits either side of the point: bounds the work Decimal() does
# on a hostile string; anything that long is past the ceiling anyway.
# \Z, not $: "$" also matches before a final newline, and "1\n" is not an amount.
_PLAIN = re.compile(r"^[0-9]{1,30}(\.[0-9]{1,30})?\Z")
_PLAIN_SIGNED = re.compile(r"^-?[0-9]{1,30}(\.[0-9]{1,30})?\Z")
_ZERO = re.compile(r"^0+(\.0+)?\Z")


def MoneyField(**kwargs) -> models.DecimalField:  # noqa: N802 - reads like a field class
    kwargs.setdefault("max_digits", MONEY_DIGITS)
    kwargs.setdefault("decimal_places", MONEY_PLACES)
    return models.DecimalField(**kwargs)


class InvalidMoney(ValueError):
    """Why a value is not an amount: a stable `code` and a message callers may reword.

    Codes: `not_a_string` (strict: not a JSON string), `not_a_decimal` (a
    float, a bool or another type), `invalid_format` (not a decimal; in
    strict mode, not plain notation), `not_finite` (NaN, Infinity),
    `not_positive` (zero or below), `zero` (a signed amount of zero),
    `too_large` (at or past `MONEY_CEILING`), `too_many_decimals` (more
    places than the scale).
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def money_parse(
    value: Any, *, scale: int | None, allow_zero: bool = False, signed: bool = False, strict: bool = False
) -> Decimal:
    """`value` as an amount, or raise InvalidMoney.

    Positive (or, with `signed`, non-zero; with `allow_zero`, zero too),
    finite, below `MONEY_CEILING` in magnitude, and, when `scale` is given,
    with at most `scale` decimal places: the result is then quantised to it.
    Zero comes back as `Decimal(0)` (quantised to `scale` when given).
    """
    if strict:
        if not isinstance(value, str):
            raise InvalidMoney("not_a_string", 'Amounts are decimal strings such as "12.50", not JSON numbers.')
        if allow_zero and _ZERO.match(value):
            return _zero(scale)
        if not (_PLAIN_SIGNED if signed else _PLAIN).match(value):
            raise InvalidMoney(
                "invalid_format",
                'Not a plain decimal like "12.50" (no sign, exponent, NaN or Infinity).',
            )
        number = Decimal(value)
    else:
        if isinstance(value, float | bool) or not isinstance(value, Decimal | int | str):
            raise InvalidMoney("not_a_decimal", 'Amount must be a decimal string such as "12.50".')
        try:
            number = Decimal(value)
        except (InvalidOperation, ValueError) as exc:
            raise InvalidMoney("invalid_format", "Amount must be a decimal number.") from exc
        if not number.is_finite():
            raise InvalidMoney("not_finite", "Amount must be finite.")
    if number == 0:
        if allow_zero:
            return _zero(scale)
        if signed:
            raise InvalidMoney("zero", "Amount must not be zero.")
    if number <= 0 and not signed:
        raise InvalidMoney("not_positive", "Amount must be greater than zero.")
    if abs(number) >= MONEY_CEILING:
        raise InvalidMoney("too_large", f"Amount must be less than {MONEY_CEILING:f}.")
    if scale is None:
        return number
    quantised = number.quantize(Decimal(1).scaleb(-scale))
    if number != quantised:  # "1.50" is fine at scale 1; "1.55" is not
        raise InvalidMoney("too_many_decimals", f"At most {scale} decimal places are allowed.")
    return quantised


def _zero(scale: int | None) -> Decimal:
    return Decimal(0) if scale is None else Decimal(0).quantize(Decimal(1).scaleb(-scale))


def decimal_text(value: Decimal) -> str:
    """A rate (a unit price) as the API shows it: plain notation, no trailing zeros ("0.25", "3", "0.00015").

    Amounts are shown at their credit type's scale; a unit price is not an
    amount (it is per 1K tokens or per unit, and may be finer than the
    scale), so it keeps exactly the digits it has, like Stripe's
    `unit_amount_decimal`.
    """
    return format(value.normalize(), "f")


def money_display(value: Decimal | int | str | None, scale: Any) -> str:
    """`value` as people read money: at `scale` places, thousands separated ("1,234.50").

    `scale` is a number of places or anything with a `scale` (a credit type).
    The one formatter of amounts for people: the admin's columns, read-only
    fields, forms and messages all use it (`config.admin_money`, the `money`
    template filter). Never "0E-9", never a nine-place tail; "-" for None.
    """
    if value is None or value == "":
        return "-"
    places = getattr(scale, "scale", scale)
    number = Decimal(value).quantize(Decimal(1).scaleb(-places))
    if number == 0:
        number = abs(number)  # no "-0.00"
    return f"{number:,.{places}f}"


def money_plain(value: Decimal | int | str | None, scale: Any) -> str:
    """`value` at `scale` places for machines (CSV exports): "1234.50", no separators; "" for None."""
    if value is None or value == "":
        return ""
    places = getattr(scale, "scale", scale)
    number = Decimal(value).quantize(Decimal(1).scaleb(-places))
    return f"{abs(number) if number == 0 else number:f}"


def unit_price_display(value: Decimal | int | str | None) -> str:
    """A unit price, which may carry more places than its credit type: every significant place, no trailing zeros."""
    if value is None or value == "":
        return "-"
    number = Decimal(value).normalize()
    if number == 0:
        return "0"
    return f"{number:,f}"
