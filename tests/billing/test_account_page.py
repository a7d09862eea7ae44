"""The account page is the customer view: balances, subscription, ledger, holds, refunds and keys."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from billing.models import Wallet
from billing.services import Actor, grant_create
from refunds.services import refund_issue
from subscriptions.services import subscription_create
from tests.billing.test_admin import staff_with
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


def test_grant_and_adjust_buttons_open_their_forms_for_those_who_may(client):
    account = funded_account("10.00")
    viewer = staff_with("accounts.view_account", "accounts.change_account")
    client.force_login(viewer)
    page = client.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()
    assert 'id="grant_credits-button"' not in page and 'id="adjust_balance-button"' not in page

    granter = staff_with("accounts.view_account", "accounts.change_account", "accounts.grant_credits")
    client.force_login(granter)
    page = client.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()
    assert 'id="grant_credits-button"' in page and 'id="adjust_balance-button"' not in page
    form = client.post(
        "/admin/accounts/account/", {"action": "grant_credits", "_selected_action": [account.pk]}
    ).content.decode()
    assert 'name="amount"' in form and account.public_id in form


def test_each_refundable_charge_row_has_a_refund_button_for_those_who_may(client):
    account = funded_account("100.00")
    open_charge = charge_for(account, "4.00")
    done_charge = charge_for(account, "2.00")
    refund_issue(charge=done_charge, reason="timeout", actor=Actor.system())
    page_url = f"/admin/accounts/account/{account.pk}/change/"

    client.force_login(staff_with("accounts.view_account", "accounts.change_account"))
    assert "refund-row-button" not in client.get(page_url).content.decode()

    client.force_login(staff_with("accounts.view_account", "accounts.change_account", "billing.refund_charge"))
    page = client.get(page_url).content.decode()
    refund_url = f"/admin/billing/ledgerentry/{open_charge.pk}/refund/"
    assert page.count("refund-row-button") == 1 and f'href="{refund_url}?next=' in page
    assert f"/admin/billing/ledgerentry/{done_charge.pk}/refund/" not in page  # refunded in full: no button
    form = client.get(refund_url, {"next": page_url})
    assert form.status_code == 200 and b'name="amount"' in form.content
    done = client.post(
        f"{refund_url}?next={page_url}", {"amount": "1.5", "reason": "customer_service", "note": "row button"}
    )
    assert done.status_code == 302 and done["Location"] == page_url
    assert open_charge.refund_logs.get().amount == Decimal("1.5")
    assert 'title="2.50 credits refundable"' in client.get(page_url).content.decode()


def test_the_refund_form_refuses_staff_without_the_refund_permission(client):
    charge = charge_for(funded_account("10.00"), "4.00")
    client.force_login(staff_with("accounts.view_account", "billing.view_ledgerentry"))
    assert client.get(f"/admin/billing/ledgerentry/{charge.pk}/refund/").status_code == 403
    assert client.post(f"/admin/billing/ledgerentry/{charge.pk}/refund/", {"reason": "timeout"}).status_code == 403
    assert charge.refund_logs.count() == 0


def test_the_statement_button_downloads_the_period_as_csv(admin_client):
    account = funded_account("100.00")
    charge = charge_for(account, "4.00")
    page = admin_client.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()
    assert 'id="statement-button"' in page
    url = f"/admin/accounts/account/{account.pk}/statement.csv"
    assert f'action="{url}"' in page
    today = charge.created_at.date().isoformat()
    response = admin_client.get(url, {"credit_type": "credits", "date_from": today, "date_to": today})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert charge.public_id in body and body.splitlines()[-1].startswith("closing,") and body.rstrip().endswith("true")


def test_the_statement_download_needs_view_permission(client):
    account = funded_account("1.00")
    client.force_login(staff_with())
    response = client.get(f"/admin/accounts/account/{account.pk}/statement.csv", {"credit_type": "credits"})
    assert response.status_code == 403


def test_the_summary_tells_purchased_credits_from_granted_ones(admin_client):
    account = funded_account("100.00")  # the plain pool
    credit_type = Wallet.objects.get(account=account).credit_type
    grant_create(account=account, credit_type=credit_type, amount="30", actor=Actor.system(), priority=5)
    grant_create(account=account, credit_type=credit_type, amount="1200", actor=Actor.system(), source="purchased")

    page = admin_client.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()

    summary = page[page.index('id="account-summary"') : page.index('id="account-subscription"')]
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r'<td class="money">(.*?)</td>', summary)]
    # balance, held, available, granted (lots), purchased, pool, daily limit, used today
    assert cells[:6] == ["1,330.00", "0.00", "1,330.00", "30.00", "1,200.00", "100.00"]
