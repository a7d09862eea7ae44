"""The header search in a real browser: a charge's txn_ id, typed in the box, opens the charge."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from billing.services import Actor, charge_create
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.factories import UserFactory, default_credit_type, funded_account


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_finds_a_charge_by_its_txn_id(live_server):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    account = funded_account("10.00")
    charge = charge_create(
        account=account, credit_type=default_credit_type(), amount=Decimal("2.5"), actor=Actor.system()
    )
    user = UserFactory(is_superuser=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", user.username)
            page.fill("#id_password", "password")
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/admin/")

            page.fill("#console-search-q", charge.public_id)
            page.press("#console-search-q", "Enter")
            page.wait_for_url(f"{live_server.url}/admin/billing/ledgerentry/{charge.pk}/change/")
            expect(page.locator("#content")).to_contain_text(charge.public_id)
            if shots := os.environ.get("CREDITLEDGER_SCREENSHOTS"):
                page.screenshot(path=f"{shots}/entry.png", full_page=True)

            page.fill("#console-search-q", "txn_nothing_like_it")
            page.press("#console-search-q", "Enter")
            page.wait_for_url(f"{live_server.url}/admin/")
            expect(page.locator(".messagelist")).to_contain_text('Nothing found for "txn_nothing_like_it"')
            if shots:
                page.screenshot(path=f"{shots}/search-none.png")
        finally:
            browser.close()
