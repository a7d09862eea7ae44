"""The customer portal: a signed, expiring link to one account's page, and nothing else."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.urls import reverse

from billing.core import Actor
from payments.models import Purchase
from payments.portal import SALT, portal_link_create
from refunds.services import refund_issue
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.factories import CreditPackFactory, PurchaseFactory, charge_for, funded_account

pytestmark = pytest.mark.django_db


def _link(account) -> str:
    return portal_link_create(account=account).path


def test_the_page_shows_balance_usage_chart_history_refunds_purchases_and_packs(client):
    account = funded_account("100.00")
    charge = charge_for(account, "12.50", description="Image render")
    refund_issue(charge=charge, amount="2.50", reason="backend_failure", actor=Actor())
    CreditPackFactory(name="Starter pack", price_minor=1000)
    CreditPackFactory(name="Retired pack", is_active=False)
    page = client.get(_link(account)).content.decode()
    assert "90.00" in page  # balance after the charge and the refund
    assert 'data-testid="usage-chart"' in page and page.count("<rect ") == 30
    assert "Image render" in page and "Refund" in page and "2.50" in page
    assert "Starter pack" in page and "Buy credits" in page and "Retired pack" not in page


def test_the_page_shows_no_other_accounts_data_and_no_staff_data(client):
    mine, other = funded_account("10.00"), funded_account("77.00")
    charge_for(other, "3.33", description="other account's job")
    page = client.get(_link(mine)).content.decode()
    assert other.public_id not in page and "77.00" not in page and "other account" not in page
    assert "/admin/" not in page and "external_id" not in page and mine.external_id not in page


def test_a_tampered_link_gets_a_clear_403_page(client):
    path = _link(funded_account())
    response = client.get(path[:-3] + "abc")
    assert response.status_code == 403
    assert b"This link is not valid" in response.content and b"Traceback" not in response.content


def test_an_expired_link_gets_a_clear_410_page(client, settings):
    account = funded_account()

    class SignedLongAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - settings.CREDITLEDGER_PORTAL_LINK_TTL_S - 60)

    token = SignedLongAgo(salt=SALT).sign(account.public_id)
    response = client.get(reverse("portal", args=[token]))
    assert response.status_code == 410 and b"This link has expired" in response.content


def test_a_link_signed_for_another_purpose_is_refused(client):
    account = funded_account()
    token = signing.TimestampSigner(salt="something.else").sign(account.public_id)
    assert client.get(reverse("portal", args=[token])).status_code == 403


def test_buy_credits_opens_a_checkout_session_and_redirects_to_it(client, stripe_on):
    account = funded_account()
    pack = CreditPackFactory()
    path = _link(account)
    response = client.post(f"{path}/checkout", {"pack": pack.public_id, "nonce": "abc123"})
    purchase = Purchase.objects.get(account=account)
    assert response.status_code == 302 and response["Location"] == purchase.checkout_url
    assert purchase.checkout_url.startswith(stripe_on)
    # A double-submitted form opens the same session: one purchase.
    client.post(f"{path}/checkout", {"pack": pack.public_id, "nonce": "abc123"})
    assert Purchase.objects.filter(account=account).count() == 1


def test_buy_credits_with_an_expired_link_charges_nothing(client, stripe_on, settings):
    path = _link(funded_account())
    settings.CREDITLEDGER_PORTAL_LINK_TTL_S = 1
    time.sleep(2.1)
    response = client.post(f"{path}/checkout", {"pack": CreditPackFactory().public_id})
    assert response.status_code == 410 and not Purchase.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_customer_opens_the_portal_sees_balance_and_chart_and_starts_a_checkout(live_server, stripe_on):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    account = funded_account("250.00")
    charge_for(account, "40.00", description="Batch job")
    pack = CreditPackFactory(name="Top-up 100", price_minor=1000)
    url = f"{live_server.url}{_link(account)}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(url)
            expect(page.locator("[data-testid=balance]")).to_contain_text("210.00")
            chart = page.locator("[data-testid=usage-chart]")
            expect(chart).to_be_visible()
            expect(chart.locator("rect")).to_have_count(30)
            assert chart.locator("rect").last.get_attribute("height") != "0.0"  # today's 40.00
            page.click(f"form:has(input[value='{pack.public_id}']) button")
            page.wait_for_url(f"{stripe_on}/_config/checkout/**")
            expect(page.locator("#amount")).to_have_text("1000")
            session_id = page.locator("#session").inner_text()
        finally:
            browser.close()

    # (The database is read once the browser's event loop is gone.)
    purchase = Purchase.objects.get(account=account)
    assert (purchase.stripe_checkout_session_id, purchase.status, purchase.pack) == (session_id, "pending", pack)

    refused = f"{live_server.url}{_link(funded_account())}"[:-2] + "xx"
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(refused)
    assert error.value.code == 403


def test_the_history_shows_customer_labels_and_never_staff_reasons_or_internal_references(client):
    from billing.services import grant_create
    from tests.factories import staff_user
    from tests.payments.helpers import charge_refunded, deliver, paid_purchase

    purchase = paid_purchase()  # its grant's description is "Purchase pur_..."
    account, staff = purchase.account, Actor(user=staff_user())
    deliver(charge_refunded(purchase, amount_refunded=250))  # a clawback: an adjustment
    grant_create(
        account=account,
        credit_type=purchase.credit_type,
        amount="5.00",
        actor=staff,
        reason="Goodwill, ticket 4411: customer threatened to churn",
    )
    charge_for(account, "1.00", actor=staff, description="Manual fix per Bob, do not tell the customer")
    charge_for(account, "2.00", description="Image render")  # the app's own words for its usage
    page = client.get(_link(account)).content.decode()
    for label in ("Credits purchased", "Purchased credits taken back", "Credits added", "Usage"):
        assert f"<td>{label}</td>" in page
    assert "Image render" in page
    assert "Goodwill" not in page and "Bob" not in page
    assert purchase.public_id not in page and "Refund of purchase" not in page


def test_the_page_lists_the_accounts_purchases_with_price_and_status(client):
    account = funded_account("10.00")
    pack = CreditPackFactory(name="Big pack", price_minor=123456, currency="usd")
    PurchaseFactory(account=account, pack=pack, amount_minor=123456, status="failed")
    page = client.get(_link(account)).content.decode()
    purchases = page[page.index("Purchases") :]
    assert "$1,234.56" in purchases and "Failed" in purchases and "No purchases yet" not in page
