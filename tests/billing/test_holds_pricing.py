"""Holds priced by the catalogue: a price key with estimated usage, captured by actual usage."""

from decimal import Decimal

import pytest

from billing.models import Wallet
from billing.services import Actor, hold_capture, hold_create
from config.errors import InvalidRequest
from pricing.services import price_create
from tests.factories import default_credit_type, funded_account, hold_for, service_key

pytestmark = pytest.mark.django_db

KEY = "acme/chat-large"


@pytest.fixture(autouse=True)
def price():
    from pricing.selectors import catalogue_cache_clear

    catalogue_cache_clear()
    # 2.50 per 1K input tokens, 10 per 1K output tokens.
    made = price_create(
        key=KEY, credit_type=default_credit_type(), per_1k_input_tokens="2.5", per_1k_output_tokens="10"
    )
    yield made
    catalogue_cache_clear()


def test_hold_by_price_key_reserves_the_estimated_cost(price):
    account = funded_account("100.00")
    hold = hold_create(
        account=account,
        credit_type=default_credit_type(),
        price_key=KEY,
        estimated_usage={"input_tokens": 1000, "output_tokens": 500},
        actor=Actor.system(),
    )
    assert hold.amount == Decimal("7.50") and hold.price_version == price.public_id
    assert Wallet.objects.get(account=account).held == Decimal("7.50")


def test_capture_by_usage_charges_the_priced_actual_usage_with_its_price(price):
    account = funded_account("100.00")
    hold = hold_for(account, "7.50", price_key=KEY)
    captured = hold_capture(hold=hold, usage={"input_tokens": 400, "output_tokens": 100}, actor=Actor.system())
    assert captured.captured_amount == Decimal("2.00") and captured.capture_usage == {
        "input_tokens": 400,
        "output_tokens": 100,
    }
    entry = captured.capture_entry
    assert entry.amount == Decimal("-2.00") and entry.price_key == KEY and entry.price_version == price
    assert Wallet.objects.get(account=account).balance == Decimal("98.00")


def test_capture_by_usage_needs_a_price_key_on_the_hold():
    hold = hold_for(funded_account("10.00"), "1.00")
    with pytest.raises(InvalidRequest):
        hold_capture(hold=hold, usage={"input_tokens": 1}, actor=Actor.system())


def test_unknown_usage_fields_are_refused():
    hold = hold_for(funded_account("10.00"), "1.00", price_key=KEY)
    with pytest.raises(InvalidRequest) as caught:
        hold_capture(hold=hold, usage={"tokens": 1}, actor=Actor.system())
    assert caught.value.code == "invalid_usage"


def test_api_hold_by_estimate_then_capture_by_usage(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    account = funded_account("100.00")
    created = api_client.post(
        "/api/v1/holds",
        {"account": account.public_id, "price_key": KEY, "estimated_usage": {"input_tokens": 2000}},
        format="json",
    )
    assert created.status_code == 201 and created.json()["amount"] == "5.00"
    captured = api_client.post(
        f"/api/v1/holds/{created.json()['id']}/capture", {"usage": {"output_tokens": 300}}, format="json"
    )
    assert captured.status_code == 200 and captured.json()["captured_amount"] == "3.00"


def test_capture_of_a_paid_key_at_zero_usage_is_recorded_as_an_anomaly():
    from pricing.models import PricingAnomaly

    account = funded_account("100.00")
    hold = hold_create(
        account=account,
        credit_type=default_credit_type(),
        price_key=KEY,
        estimated_usage={"input_tokens": 1000},
        task_id="stream-7",
        actor=Actor.system(),
    )
    captured = hold_capture(hold=hold, usage={"input_tokens": 0, "output_tokens": 0}, actor=Actor.system())
    assert captured.status == "captured" and captured.captured_amount == Decimal("0")
    record = PricingAnomaly.objects.get(account=account)
    assert record.kind == "zero_cost" and record.task_id == "stream-7" and record.resolved_key == KEY
    assert Wallet.objects.get(account=account).held == Decimal("0")


def test_capture_with_real_usage_records_no_anomaly():
    from pricing.models import PricingAnomaly

    account = funded_account("100.00")
    hold = hold_create(
        account=account,
        credit_type=default_credit_type(),
        price_key=KEY,
        estimated_usage={"input_tokens": 1000},
        actor=Actor.system(),
    )
    hold_capture(hold=hold, usage={"input_tokens": 400}, actor=Actor.system())
    assert not PricingAnomaly.objects.filter(account=account).exists()


def test_hold_with_an_amount_and_an_unpriced_key_is_refused_up_front():
    from pricing.exceptions import PriceNotConfigured

    account = funded_account("100.00")
    with pytest.raises(PriceNotConfigured):
        hold_create(
            account=account,
            credit_type=default_credit_type(),
            amount="5.00",
            price_key="acme/unknown",
            actor=Actor.system(),
        )
    assert Wallet.objects.get(account=account).held == Decimal("0")


def test_hold_with_an_amount_and_a_priced_key_can_be_captured_by_usage(price):
    account = funded_account("100.00")
    hold = hold_create(
        account=account, credit_type=default_credit_type(), amount="5.00", price_key=KEY, actor=Actor.system()
    )
    assert hold.price_version == price.public_id
    captured = hold_capture(hold=hold, usage={"input_tokens": 400}, actor=Actor.system())
    assert captured.captured_amount == Decimal("1.00")
