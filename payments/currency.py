"""Prices in minor units, shown as money: the one place that knows how many digits a currency's minor unit has.

Amounts are stored as Stripe takes them, whole minor units (`price_minor`,
`amount_minor`, `monthly_cap_minor`): cents for USD, yen for JPY, fils
(thousandths) for KWD. How many digits that is comes from Babel (CLDR's
currency data), and the formatting too (symbol, grouping, locale).

CLDR agrees with Stripe's own lists for every zero-decimal currency Stripe
names (BIF, CLP, DJF, GNF, JPY, KMF, KRW, MGA, PYG, RWF, UGX, VND, VUV, XAF,
XOF, XPF) and every three-decimal one (BHD, JOD, KWD, OMR, TND);
tests/payments/test_currency.py checks both lists against the installed
Babel. Where they differ, Stripe wins, since the amounts are Stripe's: CLDR
shows no decimals for the currencies in STRIPE_TWO_DIGITS, but Stripe counts
them in hundredths (ISK "for backwards compatibility", HUF, IDR, COP, ...;
https://docs.stripe.com/currencies#special-cases), so 100000 HUF minor is
1,000.00 HUF, not 100,000.
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision
from django.conf import settings
from django.utils import translation

STRIPE_TWO_DIGITS = frozenset({"AFN", "ALL", "COP", "HUF", "IDR", "ISK", "LAK", "LBP", "MMK", "SLL", "SOS", "YER"})


def minor_unit_digits(currency: str) -> int:
    """Digits after the point in one major unit's worth of minor units, as Stripe counts them (usd 2, jpy 0, kwd 3)."""
    code = currency.upper()
    if code in STRIPE_TWO_DIGITS:
        return 2
    return get_currency_precision(code)


def minor_to_major(amount_minor: int, currency: str) -> Decimal:
    """An amount in minor units as a Decimal in major units (1050 usd -> 10.50; 1050 jpy -> 1050)."""
    return Decimal(amount_minor).scaleb(-minor_unit_digits(currency))


def price_display(amount_minor: int, currency: str) -> str:
    """An amount in minor units formatted for people, in the active language ("$10.50", "¥1,050", "KWD 1.050")."""
    locale = translation.to_locale(translation.get_language() or settings.LANGUAGE_CODE)
    code = currency.upper()
    return format_currency(
        minor_to_major(amount_minor, code),
        code,
        locale=locale,
        # CLDR's digits, except where Stripe's differ: then the locale pattern's own (two).
        currency_digits=code not in STRIPE_TWO_DIGITS,
    )
