"""The account page is the customer view: balances, subscription, ledger, holds, refunds and keys."""

from __future__ import annotations

import pytest

from billing.services import Actor
from refunds.services import refund_issue
from subscriptions.services import subscription_create
from tests.factories import PlanFactory, UserFactory, account_key, charge_for, funded_account, hold_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_superuser=True))
    return client


def test_the_account_page_shows_the_customer_view(admin_client):
    account = funded_account("1500.00")
    charge = charge_for(account, "4.00", route="/api/generate")
    refund_issue(charge=charge, amount="1.50", reason="timeout", api_route="/api/generate", actor=Actor.system())
    hold = hold_for(account, "10.00")
    key, _ = account_key(account)
    subscription_create(account=account, plan=PlanFactory(name="Gold"), actor=Actor.system())

    page = admin_client.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()

    summary = page[page.index('id="account-summary"') : page.index('id="account-subscription"')]
    assert "1,597.50" in summary and "10.00" in summary and "1,587.50" in summary  # balance, held, available
    assert "Gold" in page[page.index('id="account-subscription"') :]
    assert charge.public_id in page and f"?q={account.public_id}" in page
    assert hold.public_id in page[page.index('id="account-holds"') :]
    assert "Timeout" in page[page.index('id="account-refunds"') :]
    assert key.prefix in page[page.index('id="account-keys"') :]


def test_the_latest_25_entries_only(admin_client):
    account = funded_account("100.00")
    entries = [charge_for(account, "1.00") for _ in range(30)]
    page = admin_client.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()
    assert entries[-1].public_id in page and entries[4].public_id not in page


def test_the_account_list_shows_what_is_available(admin_client):
    account = funded_account("1234.50")
    hold_for(account, "4.50")
    page = admin_client.get("/admin/accounts/account/").content.decode()
    assert '<span class="money" title="balance 1,234.50 - held 4.50">1,230.00</span> credits' in page
