"""Daily limits: enforced under the wallet lock, per calendar day, never reset by a job."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings

from billing.exceptions import DailyLimitExceeded
from billing.models import DailyLimitOverride, DailyUsage, LedgerEntry, Wallet
from billing.services import (
    Actor,
    charge_create,
    daily_limit_day,
    daily_limit_get,
    daily_usage_get,
    hold_capture,
    hold_create,
    hold_release,
)
from tests.concurrency import run_concurrently
from tests.factories import default_credit_type, funded_account, service_key

D = Decimal


def charge(account, amount):
    return charge_create(account=account, credit_type=default_credit_type(), amount=D(amount), actor=Actor.system())


def limit_for(account):
    return daily_limit_get(account=account, credit_type=default_credit_type())


def override(account, limit):
    return DailyLimitOverride.objects.create(account=account, credit_type=default_credit_type(), daily_limit=limit)


@pytest.mark.django_db(transaction=True)
def test_thirty_concurrent_charges_against_a_limit_of_ten_admit_exactly_ten():
    account = funded_account("100.00")
    override(account, D("10"))

    results = run_concurrently(lambda i: charge(account, "1"), 30)

    succeeded = [r for r in results if isinstance(r, LedgerEntry)]
    refused = [r for r in results if isinstance(r, DailyLimitExceeded)]
    assert len(succeeded) == 10 and len(refused) == 20, results
    wallet = Wallet.objects.get(account=account)
    assert wallet.balance == D("90.00")
    assert daily_usage_get(wallet=wallet) == D("10")


@pytest.mark.django_db
def test_charge_past_the_limit_is_refused_with_429_and_changes_nothing():
    account = funded_account("100.00")
    override(account, D("10"))
    charge(account, "7.12")
    with pytest.raises(DailyLimitExceeded) as caught:
        charge(account, "3")
    error = caught.value
    assert error.status == 429 and error.code == "daily_limit_exceeded" and error.replayable
    assert error.details["remaining"] == "2.88" and error.details["required"] == "3.00"
    assert Wallet.objects.get(account=account).balance == D("92.88")
    assert daily_usage_get(wallet=Wallet.objects.get(account=account)) == D("7.12")
    charge(account, "2.88")  # exactly up to the limit is fine


@pytest.mark.django_db
def test_no_limit_without_override_or_subscription():
    account = funded_account("100.00")
    assert limit_for(account) is None
    charge(account, "99")
    assert not DailyUsage.objects.exists()  # nothing is counted while no limit applies


@pytest.mark.django_db
def test_yesterdays_usage_does_not_count_today_without_any_reset_job():
    account = funded_account("100.00")
    override(account, D("10"))
    wallet = Wallet.objects.get(account=account)
    yesterday = daily_limit_day() - timedelta(days=1)
    DailyUsage.objects.create(account_id=wallet.account_id, wallet=wallet, day=yesterday, used=D("10"))
    charge(account, "10")  # a fresh day: nothing had to reset yesterday's row
    assert DailyUsage.objects.get(wallet=wallet, day=yesterday).used == D("10")


@override_settings(CREDITLEDGER_DAILY_LIMIT_TIMEZONE="America/New_York")
def test_the_day_is_the_calendar_day_in_the_configured_time_zone():
    # 03:00 UTC on 2 January is still 1 January in New York.
    assert daily_limit_day(datetime(2026, 1, 2, 3, 0, tzinfo=UTC)) == date(2026, 1, 1)
    assert daily_limit_day(datetime(2026, 1, 2, 6, 0, tzinfo=UTC)) == date(2026, 1, 2)


@pytest.mark.django_db
def test_api_answers_429_daily_limit_exceeded(api_client):
    account = funded_account("100.00")
    override(account, D("1"))
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = {"account": account.public_id, "amount": "2.00"}
    response = api_client.post("/api/v1/charges", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == "daily_limit_exceeded"
    assert "resets_at" in response.json()["error"]


def hold(account, amount):
    return hold_create(account=account, credit_type=default_credit_type(), amount=D(amount), actor=Actor.system())


@pytest.mark.django_db
def test_a_pending_hold_counts_against_the_limit_until_released():
    account = funded_account("100.00")
    override(account, D("10"))
    pending = hold(account, "8")
    with pytest.raises(DailyLimitExceeded):
        charge(account, "3")
    hold_release(hold=pending, actor=Actor.system())
    charge(account, "3")
    assert daily_usage_get(wallet=Wallet.objects.get(account=account)) == D("3")


@pytest.mark.django_db
def test_a_capture_counts_what_it_captured_and_is_never_refused():
    account = funded_account("100.00")
    override(account, D("10"))
    small = hold(account, "8")
    hold_capture(hold=small, amount=D("5"), actor=Actor.system())
    assert daily_usage_get(wallet=Wallet.objects.get(account=account)) == D("5")
    big = hold(account, "5")
    hold_capture(hold=big, amount=D("7"), actor=Actor.system())  # past the limit: the work is done
    assert daily_usage_get(wallet=Wallet.objects.get(account=account)) == D("12")


@pytest.mark.django_db(transaction=True)
def test_thirty_concurrent_holds_against_a_limit_of_ten_admit_exactly_ten():
    account = funded_account("100.00")
    override(account, D("10"))
    results = run_concurrently(lambda i: hold(account, "1"), 30)
    assert len([r for r in results if isinstance(r, DailyLimitExceeded)]) == 20, results
    assert Wallet.objects.get(account=account).held == D("10")
