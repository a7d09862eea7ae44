"""The account page in a real browser: the customer view, and a grant through its button."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Wallet
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.factories import UserFactory, funded_account


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_sees_the_account_and_grants_through_the_button(live_server):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    account = funded_account("10.00", name="Browser Buyer")
    user = UserFactory(is_superuser=True)
    page_url = f"{live_server.url}/admin/accounts/account/{account.pk}/change/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/accounts/account/{account.pk}/change/")
            page.fill("#id_username", user.username)
            page.fill("#id_password", "password")
            page.click("input[type=submit]")
            page.wait_for_url(page_url)

            expect(page.locator("#account-summary")).to_contain_text("10.00")
            page.click("#grant_credits-button")
            page.select_option("#id_credit_type", "credits")
            page.fill("#id_amount", "1234.5")
            page.fill("#id_reason", "granted from the browser test")
            page.click("input[type=submit][value='Grant credits']")
            message = page.locator(".messagelist")
            expect(message).to_contain_text(f"Granted 1,234.50 credits to {account.public_id}")
            expect(message).to_contain_text("balance 1,244.50")

            page.click(f".messagelist a:has-text('{account.public_id}')")
            page.wait_for_url(page_url)
            expect(page.locator("#account-summary")).to_contain_text("1,244.50")
            expect(page.locator("#account-ledger")).to_contain_text("1,234.50")
        finally:
            browser.close()

    assert Wallet.objects.get(account=account).balance == Decimal("1244.50")
