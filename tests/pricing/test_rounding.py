"""The rounding rule, as properties: round half up to the credit type's scale, and a
non-zero usage of a non-zero price never costs zero. Quotes and charges agree."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.services import UnitPrices, Usage, amount_exact, amount_round
from tests.factories import CreditTypeFactory, PriceFactory, funded_account, service_key

unit_price = st.decimals(min_value=Decimal(0), max_value=Decimal(1000), places=9, allow_nan=False, allow_infinity=False)
prices = st.builds(
    UnitPrices,
    per_request=unit_price,
    per_1k_input_tokens=unit_price,
    per_1k_output_tokens=unit_price,
    per_unit=unit_price,
)
usages = st.builds(
    Usage,
    input_tokens=st.integers(0, 10_000_000),
    output_tokens=st.integers(0, 10_000_000),
    units=st.integers(0, 10_000),
    requests=st.integers(0, 1000),
)
scales = st.integers(0, 9)
FAST = settings(max_examples=300, deadline=None)


@FAST
@given(prices, usages, scales)
def test_amount_has_exactly_the_credit_type_scale(p, u, scale):
    amount = amount_round(amount_exact(p, u), scale)
    assert amount == amount.quantize(Decimal(1).scaleb(-scale))
    assert amount.as_tuple().exponent == -scale


@FAST
@given(prices, usages, scales)
def test_amount_is_the_exact_amount_rounded_half_up(p, u, scale):
    exact = amount_exact(p, u)
    amount = amount_round(exact, scale)
    quantum = Decimal(1).scaleb(-scale)
    if amount == quantum and exact < quantum / 2:
        return  # the minimum charge (next property)
    assert amount == exact.quantize(quantum, rounding=ROUND_HALF_UP)
    assert abs(amount - exact) <= quantum / 2


@FAST
@given(prices, usages, scales)
def test_non_zero_usage_of_a_non_zero_price_never_costs_zero(p, u, scale):
    exact = amount_exact(p, u)
    amount = amount_round(exact, scale)
    assert (amount > 0) == (exact > 0)
    if exact > 0:
        assert amount >= Decimal(1).scaleb(-scale)


@FAST
@given(prices, usages, usages, scales)
def test_more_usage_never_costs_less(p, a, b, scale):
    bigger = Usage(
        input_tokens=max(a.input_tokens, b.input_tokens),
        output_tokens=max(a.output_tokens, b.output_tokens),
        units=max(a.units, b.units),
        requests=max(a.requests, b.requests),
    )
    assert amount_round(amount_exact(p, bigger), scale) >= amount_round(amount_exact(p, a), scale)


@FAST
@given(usages, scales)
def test_zero_prices_cost_zero(u, scale):
    assert amount_round(amount_exact(UnitPrices(), u), scale) == 0


def test_examples_of_the_rule():
    p = UnitPrices(per_1k_input_tokens=Decimal("0.005"))
    assert amount_round(amount_exact(p, Usage(input_tokens=1000)), 2) == Decimal("0.01")  # 0.005 -> 0.01 (half up)
    assert amount_round(amount_exact(p, Usage(input_tokens=999)), 2) == Decimal("0.01")  # 0.004995 -> minimum
    assert amount_round(amount_exact(p, Usage(input_tokens=2999)), 2) == Decimal("0.01")  # 0.014995 -> 0.01
    assert amount_round(amount_exact(p, Usage(input_tokens=3000)), 2) == Decimal("0.02")  # 0.015 -> 0.02


api_usages = st.fixed_dictionaries(
    {},
    optional={
        "input_tokens": st.integers(0, 2_000_000),
        "output_tokens": st.integers(0, 2_000_000),
        "units": st.integers(0, 50),
        "requests": st.integers(0, 5),
    },
)


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage=api_usages, scale=st.sampled_from([0, 2, 6]))
def test_the_quote_endpoint_and_a_charge_with_the_same_usage_agree(api_client, usage, scale):
    credit_type = CreditTypeFactory(code=f"scale{scale}", scale=scale)
    PriceFactory(
        key="vendor/model",
        credit_type=credit_type,
        per_request=Decimal("0.3"),
        per_1k_input_tokens=Decimal("0.0137"),
        per_1k_output_tokens=Decimal("0.411"),
        per_unit=Decimal("1.005"),
        unit_name="image",
    )
    account = funded_account("10000", credit_type=credit_type)
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = {"account": account.public_id, "credit_type": credit_type.code, "key": "vendor/model", "usage": usage}
    quote = api_client.post("/api/v1/quotes", body, format="json").json()
    charge = api_client.post("/api/v1/charges", body, format="json")
    if quote["amount"] == format(Decimal(0).quantize(Decimal(1).scaleb(-scale)), "f"):
        assert charge.status_code == 200 and charge.json()["amount"] == quote["amount"]
    else:
        assert charge.status_code == 201, charge.json()
        assert charge.json()["amount"] == "-" + quote["amount"]
        assert charge.json()["pricing"]["price_version"] == quote["price_version"]
