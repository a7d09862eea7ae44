"""A staff refund in a real browser: Playwright driving Debian's Chromium against the live server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import Wallet
from refunds.models import RefundLog
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.factories import charge_for, funded_account, staff_user


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_logs_in_and_refunds_a_charge_through_the_form(live_server):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    # All ORM work happens outside the Playwright block: its sync API keeps an
    # event loop on this thread, where Django refuses synchronous queries.
    account = funded_account("10.00")
    charge = charge_for(account, "4.00", route="/api/tarot/chat")
    user = staff_user(can_refund=True)
    change_url = f"{live_server.url}/admin/billing/ledgerentry/{charge.pk}/change/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/billing/ledgerentry/{charge.pk}/change/")
            page.fill("#id_username", user.username)
            page.fill("#id_password", "password")
            page.click("input[type=submit]")
            page.wait_for_url(change_url)

            expect(page.locator("#refund-button")).to_contain_text("4.00 refundable")
            page.click("#refund-button")
            expect(page.locator("#refundable")).to_contain_text("4.00")
            page.fill("#id_amount", "1.50")
            page.select_option("#id_reason", "customer_service")
            page.fill("#id_note", "refunded from the browser test")
            page.click("#refund-form input[type=submit]")
            page.wait_for_url(change_url)
            expect(page.locator(".messagelist")).to_contain_text("2.50 remains refundable")
            expect(page.locator("#refund-button")).to_contain_text("2.50 refundable")
        finally:
            browser.close()

    log = RefundLog.objects.get(charge=charge)
    assert (log.amount, log.reason, log.actor_user_id, log.note) == (
        Decimal("1.50"),
        "customer_service",
        user.pk,
        "refunded from the browser test",
    )
    assert Wallet.objects.get(account=account).balance == Decimal("7.50")
