"""Balance alerts: balance.low once per crossing (equality included), balance.depleted at zero, under the lock."""

from decimal import Decimal

import pytest

from billing.alerts import wallet_alerts_set
from billing.core import Actor
from billing.exceptions import InvalidAmount
from billing.models import Wallet
from billing.services import grant_create, hold_release
from events.models import FeedEvent
from tests.concurrency import run_concurrently
from tests.factories import charge_for, default_credit_type, funded_account, hold_for, service_key

pytestmark = pytest.mark.django_db


def low_events(account) -> list[FeedEvent]:
    return list(FeedEvent.objects.filter(account=account, type="balance.low").order_by("id"))


def with_threshold(amount: str, threshold: str):
    account = funded_account(amount)
    wallet_alerts_set(account=account, credit_type=default_credit_type(), low_balance=threshold)
    return account


def test_a_charge_crossing_the_threshold_fires_balance_low_once():
    account = with_threshold("20.00", "10.00")
    charge_for(account, "12.00")
    charge_for(account, "1.00")
    [event] = low_events(account)
    assert event.data["available"] == "8.00" and event.data["available_before"] == "20.00"
    assert event.data["low_balance"] == "10.00" and event.data["credit_type"] == "credits"


def test_in_a_batch_the_alert_follows_the_charge_that_crossed_the_threshold():
    from billing.services import BatchCharge, charges_batch_apply

    account = with_threshold("10.00", "5.00")
    items = [BatchCharge(account=account, credit_type=default_credit_type(), amount="3.00") for _ in range(3)]
    outcomes = charges_batch_apply(charges=items, actor=Actor.system())
    assert all(outcome.pk is not None for outcome in outcomes)  # every entry written, its key set
    types = list(FeedEvent.objects.filter(account=account).order_by("id").values_list("type", flat=True))
    # 10 -> 7 -> 4 (crosses 5) -> 1: the grant, two charges, the alert, the third charge.
    assert types == ["grant.created", "charge.created", "charge.created", "balance.low", "charge.created"]
    [event] = low_events(account)
    assert (event.data["available_before"], event.data["available"]) == ("7.00", "4.00")
    assert Wallet.objects.get(account=account).balance == Decimal("1.00")


def test_landing_exactly_on_the_threshold_fires():
    account = with_threshold("20.00", "10.00")
    charge_for(account, "10.00")
    assert len(low_events(account)) == 1


def test_staying_above_the_threshold_fires_nothing():
    account = with_threshold("20.00", "10.00")
    charge_for(account, "9.99")
    assert low_events(account) == []


def test_rising_above_and_crossing_again_fires_again():
    account = with_threshold("20.00", "10.00")
    charge_for(account, "15.00")
    grant_create(account=account, credit_type=default_credit_type(), amount="1.00", reason="top-up", actor=Actor())
    charge_for(account, "1.00")  # still at or below: not re-armed yet
    assert len(low_events(account)) == 1
    grant_create(account=account, credit_type=default_credit_type(), amount="20.00", reason="top-up", actor=Actor())
    charge_for(account, "20.00")
    assert len(low_events(account)) == 2


def test_a_hold_reserving_past_the_threshold_fires_and_its_release_rearms():
    account = with_threshold("20.00", "10.00")
    hold = hold_for(account, "15.00")
    assert len(low_events(account)) == 1
    hold_release(hold=hold, actor=Actor.system())
    assert Wallet.objects.get(account=account).low_balance_armed
    hold_for(account, "15.00")
    assert len(low_events(account)) == 2


def test_reaching_zero_fires_balance_depleted():
    account = funded_account("5.00")
    charge_for(account, "5.00")
    [event] = FeedEvent.objects.filter(account=account, type="balance.depleted")
    assert event.data["available"] == "0.00" and event.data["available_before"] == "5.00"


def test_the_default_threshold_comes_from_settings(settings):
    settings.CREDITLEDGER_LOW_BALANCE_DEFAULTS = {"credits": Decimal("10")}
    account = funded_account("20.00")
    charge_for(account, "10.00")
    assert len(low_events(account)) == 1


def test_without_a_threshold_nothing_fires(settings):
    settings.CREDITLEDGER_LOW_BALANCE_DEFAULTS = {}
    account = funded_account("20.00")
    charge_for(account, "19.00")
    assert low_events(account) == []


def test_setting_a_threshold_above_the_balance_does_not_fire_until_it_rises_and_falls_again():
    account = with_threshold("5.00", "10.00")
    charge_for(account, "1.00")
    assert low_events(account) == []


def test_a_threshold_with_too_many_places_is_refused():
    account = funded_account("5.00")
    with pytest.raises(InvalidAmount):
        wallet_alerts_set(account=account, credit_type=default_credit_type(), low_balance="1.001")


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_charges_across_the_threshold_fire_once():
    account = with_threshold("60.00", "35.00")

    def charge(_: int):
        return charge_for(account, "1.00")

    results = run_concurrently(charge, 50)
    assert not [r for r in results if isinstance(r, Exception)]
    assert Wallet.objects.get(account=account).balance == Decimal("10.00")
    [event] = low_events(account)
    assert event.data["available"] == "35.00"


# --- the API -----------------------------------------------------------------------


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def test_put_alerts_sets_the_wallet_threshold(service):
    account = funded_account("20.00")
    response = service.put(
        f"/api/v1/accounts/{account.public_id}/alerts", {"credit_type": "credits", "low_balance": "7.5"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "object": "balance_alerts",
        "account": account.public_id,
        "credit_type": "credits",
        "low_balance": "7.50",
        "low_balance_source": "wallet",
        "armed": True,
    }
    charge_for(account, "12.50")
    assert len(low_events(account)) == 1


def test_put_alerts_with_null_returns_to_the_default(service, settings):
    settings.CREDITLEDGER_LOW_BALANCE_DEFAULTS = {"credits": Decimal("3")}
    account = with_threshold("20.00", "10.00")
    body = service.put(f"/api/v1/accounts/{account.public_id}/alerts", {"low_balance": None}, format="json").json()
    assert body["low_balance"] == "3.00" and body["low_balance_source"] == "default"


def test_put_alerts_refuses_a_bad_amount(service):
    account = funded_account("20.00")
    response = service.put(f"/api/v1/accounts/{account.public_id}/alerts", {"low_balance": "-1"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_amount"


def test_put_alerts_needs_a_service_key(api_client):
    from tests.factories import account_key

    account = funded_account("20.00")
    _, secret = account_key(account)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api_client.put(f"/api/v1/accounts/{account.public_id}/alerts", {"low_balance": "1"}, format="json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_the_wallet_admin_sets_a_threshold_and_says_which(admin_client):
    wallet = Wallet.objects.get(account=funded_account("100.00"))
    response = admin_client.post(
        "/admin/billing/wallet/",
        {"action": "set_low_balance", "apply": "1", "low_balance": "25", "_selected_action": [wallet.pk]},
        follow=True,
    )
    wallet.refresh_from_db()
    assert wallet.low_balance == Decimal("25")
    text = " ".join(str(m) for m in response.context["messages"])
    assert f"({wallet.credit_type.code}) at 25.00." in text
