"""Parsers for structured environment settings, used by config/settings.py at start-up.

They raise `ImproperlyConfigured` naming the variable and what was wrong, so a
typo stops the process at start-up instead of being silently ignored (STYLE.md
item 11). Pure functions: no Django set-up, no database.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

# A credit type's code as pricing.CreditType stores it (letters, digits, "_", "-").
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}\Z")
_AMOUNT = re.compile(r"^[0-9]{1,30}(\.[0-9]{1,30})?\Z")
_DURATION = re.compile(r"^([0-9]{1,9})\s*([smhd]?)\Z")
# config.money.MONEY_CEILING (not imported: settings load before Django is set up).
MONEY_CEILING = Decimal(10) ** 19
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 3600}


def amounts_by_credit_type_parse(name: str, raw: str) -> dict[str, Decimal]:
    """`credits=1000,usd=100` -> {"credits": Decimal("1000"), "usd": Decimal("100")}; empty -> {}.

    Each amount is a plain non-negative decimal below the money ceiling; a
    credit type may appear once. Whitespace around items, codes and amounts
    is allowed.
    """
    amounts: dict[str, Decimal] = {}
    if not raw.strip():
        return amounts
    for item in raw.split(","):
        code, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not code or not text:
            raise ImproperlyConfigured(
                f"{name}: {item.strip()!r} is not CODE=AMOUNT (write e.g. {name}=credits=1000,usd=100)."
            )
        if not _CODE.match(code):
            raise ImproperlyConfigured(f"{name}: {code!r} is not a credit type code.")
        if code in amounts:
            raise ImproperlyConfigured(f"{name}: credit type {code!r} is given twice.")
        if not _AMOUNT.match(text):
            raise ImproperlyConfigured(f"{name}: {text!r} (for {code}) is not a plain non-negative decimal.")
        try:
            value = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
            raise ImproperlyConfigured(f"{name}: {text!r} is not a decimal.") from exc
        if value >= MONEY_CEILING:
            raise ImproperlyConfigured(f"{name}: {text!r} (for {code}) is too large.")
        amounts[code] = value
    return amounts


def duration_parse(name: str, raw: str) -> timedelta:
    """`72h`, `3d`, `90m`, `3600s`, or a bare number of hours (`72`) -> a positive timedelta."""
    match = _DURATION.match(raw.strip().lower())
    if not match or int(match.group(1)) < 1:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a duration: write a positive whole number with s, m, h or d (e.g. 72h)."
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
