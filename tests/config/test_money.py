"""config.money: money_parse, the one parser every amount goes through, and money_display, the one formatter."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.money import MONEY_CEILING, MONEY_PLACES, InvalidMoney, money_display, money_parse, unit_price_display


def refusal(value, **options) -> str:
    options.setdefault("scale", None)
    with pytest.raises(InvalidMoney) as caught:
        money_parse(value, **options)
    assert caught.value.message
    return caught.value.code


# --- lenient (Python callers) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "amount"),
    [("12.50", "12.50"), (12, "12"), (Decimal("12.5"), "12.5"), (" 12.5 ", "12.5"), ("1.25E+1", "12.5")],
)
def test_lenient_reads_decimals_ints_and_strings(value, amount):
    assert money_parse(value, scale=2) == Decimal(amount)


@pytest.mark.parametrize("value", [1.5, True, None, [], {"amount": "1"}])
def test_lenient_refuses_floats_bools_and_other_types(value):
    assert refusal(value) == "not_a_decimal"


@pytest.mark.parametrize("value", ["abc", "", "1.2.3"])
def test_lenient_refuses_what_decimal_cannot_read(value):
    assert refusal(value) == "invalid_format"


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-Infinity", Decimal("NaN")])
def test_lenient_refuses_nan_and_infinity(value):
    assert refusal(value) == "not_finite"


@pytest.mark.parametrize("value", ["0", "0.00", "-0", "-1", -5])
def test_zero_and_negatives_are_not_positive(value):
    assert refusal(value) == "not_positive"


def test_the_ceiling_is_the_column_s():
    assert MONEY_CEILING == Decimal(10) ** 19
    assert money_parse(MONEY_CEILING - Decimal("0.01"), scale=2) == Decimal("9999999999999999999.99")
    assert refusal(MONEY_CEILING) == "too_large"
    assert refusal("1e400") == "too_large"


def test_more_places_than_the_scale_are_refused():
    assert refusal("1.001", scale=2) == "too_many_decimals"
    assert refusal("0.5", scale=0) == "too_many_decimals"


def test_trailing_zeros_within_the_scale_are_fine_and_the_result_is_quantised():
    parsed = money_parse("1.5000", scale=2)
    assert parsed == Decimal("1.50") and parsed.as_tuple().exponent == -2


def test_without_a_scale_the_value_is_returned_as_read():
    assert money_parse("1.23456789012", scale=None).as_tuple().exponent == -11


def test_allow_zero_returns_zero_at_the_scale():
    assert money_parse("0", scale=2, allow_zero=True).as_tuple() == Decimal("0.00").as_tuple()
    assert money_parse("-0", scale=None, allow_zero=True) == 0
    assert refusal("-1", allow_zero=True) == "not_positive"


def test_signed_takes_negatives_and_refuses_zero():
    assert money_parse("-2.50", scale=2, signed=True) == Decimal("-2.50")
    assert refusal("0", signed=True) == "zero"
    assert refusal(-MONEY_CEILING, signed=True) == "too_large"
    assert refusal("-1.001", scale=2, signed=True) == "too_many_decimals"


# --- strict (the API's JSON rule) -----------------------------------------------------------------


@pytest.mark.parametrize("value", [12, Decimal("12"), 1.5, None, [], True])
def test_strict_takes_only_strings(value):
    assert refusal(value, strict=True) == "not_a_string"


@pytest.mark.parametrize(
    "value", ["-1.00", "+1", "1e3", "NaN", "Infinity", " 1.00", "1.00 ", "", ".5", "5.", "1_000", "1" * 31]
)
def test_strict_takes_only_plain_decimal_notation(value):
    assert refusal(value, strict=True) == "invalid_format"


def test_strict_signed_takes_a_leading_minus():
    assert money_parse("-1.25", scale=2, strict=True, signed=True) == Decimal("-1.25")


def test_strict_zero_is_not_positive_unless_allowed():
    assert refusal("0.00", strict=True) == "not_positive"
    assert money_parse("0" * 40, scale=None, strict=True, allow_zero=True) == 0


def test_strict_applies_the_ceiling_and_the_scale():
    assert refusal("1" + "0" * 19, strict=True) == "too_large"
    assert refusal("1.001", scale=2, strict=True) == "too_many_decimals"


# --- round trip -----------------------------------------------------------------------------------


@st.composite
def amounts(draw, signed: bool = False):
    scale = draw(st.integers(0, MONEY_PLACES))
    units = draw(st.integers(1, int(MONEY_CEILING) * 10**scale - 1))
    sign = -1 if signed and draw(st.booleans()) else 1
    return Decimal(sign * units).scaleb(-scale), scale


@settings(max_examples=500, deadline=None)
@given(amounts())
def test_any_amount_in_range_round_trips_at_its_scale(case):
    value, scale = case
    for parsed in (money_parse(str(value), scale=scale), money_parse(format(value, "f"), scale=scale, strict=True)):
        assert parsed == value and parsed.as_tuple().exponent == -scale


@settings(max_examples=200, deadline=None)
@given(amounts(signed=True))
def test_any_signed_amount_in_range_round_trips_at_its_scale(case):
    value, scale = case
    parsed = money_parse(str(value), scale=scale, signed=True)
    assert parsed == value and parsed.as_tuple().exponent == -scale


@pytest.mark.parametrize(
    ("value", "scale", "shown"),
    [
        (Decimal("493.750000000"), 2, "493.75"),
        (Decimal("0E-9"), 2, "0.00"),
        (Decimal("-0E-9"), 2, "0.00"),
        (Decimal("1234.5"), 2, "1,234.50"),
        (Decimal("-1234567.891000000"), 6, "-1,234,567.891000"),
        (Decimal("12.000000000"), 0, "12"),
        (None, 2, "-"),
    ],
)
def test_money_display_shows_the_scale_with_thousands_separators(value, scale, shown):
    assert money_display(value, scale) == shown


def test_money_display_takes_a_credit_type_for_its_scale():
    class Usd:
        scale = 6

    assert money_display(Decimal("0.75"), Usd()) == "0.750000"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("0E-9"), "0"),
        (Decimal("0.002500000"), "0.0025"),
        (Decimal("10.000000000"), "10"),
        (Decimal("1500"), "1,500"),
    ],
)
def test_unit_price_display_keeps_every_significant_place_and_no_more(value, shown):
    assert unit_price_display(value) == shown
