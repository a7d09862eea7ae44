"""The dashboard in a real browser: figures at scale, the chart drawn, nothing asked of another host."""

from __future__ import annotations

import os

import pytest

from billing.services import Actor
from console.services import ledger_rollup_refresh
from refunds.services import refund_issue
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.factories import UserFactory, charge_for, funded_account, hold_for


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_sees_the_dashboard_with_its_figures_and_chart(live_server):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    spender = funded_account("12345.00", name="Big Spender")
    charge = charge_for(spender, "1234.50", route="/api/export")
    ledger_rollup_refresh()  # the grant and the charge from the rollup, the refund and hold read live
    refund_issue(charge=charge, amount="234.50", reason="timeout", api_route="/api/export", actor=Actor.system())
    hold_for(spender, "10.00")
    user = UserFactory(is_superuser=True)

    elsewhere: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(20_000)
            page.on(
                "request",
                lambda r: None if r.url.startswith((live_server.url, "data:")) else elsewhere.append(r.url),
            )
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", user.username)
            page.fill("#id_password", "password")
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/admin/")
            page.wait_for_load_state("networkidle")

            credits = page.locator("#dash-credits")
            expect(credits.locator('[data-figure="charged-today"]')).to_have_text("1,234.50")
            expect(credits.locator('[data-figure="granted-30d"]')).to_have_text("12,345.00")
            expect(credits.locator('[data-figure="refunded-today"]')).to_have_text("234.50")
            expect(credits.locator('[data-figure="active-accounts-30d"]')).to_have_text("1")
            expect(credits.locator('[data-figure="held"]')).to_contain_text("10.00")
            expect(credits.locator('[data-rate="/api/export"]')).to_have_text("19.0%")
            expect(credits.locator(".dash-top")).to_contain_text("Big Spender")
            expect(page.locator("#dash-approvals")).to_contain_text("0")

            # The chart is drawn: three series of 30 points each, laid out at a real size.
            chart = credits.locator("figure.dash-chart svg")
            box = chart.bounding_box()
            assert box and box["width"] > 500 and box["height"] > 120
            for series in ("charged", "granted", "refunded"):
                expect(chart.locator(f'[data-series="{series}"] circle')).to_have_count(30)
            # It fits 1366 px: nothing wider than the window.
            assert page.evaluate("document.documentElement.scrollWidth") <= 1366

            credits.locator('[data-figure="charged-30d"] a').click()
            page.wait_for_url("**/admin/billing/ledgerentry/?**")
            expect(page.locator("#result_list tbody tr")).to_have_count(1)
            if shots := os.environ.get("CREDITLEDGER_SCREENSHOTS"):
                page.goto(f"{live_server.url}/admin/")
                page.screenshot(path=f"{shots}/dashboard.png", full_page=True)
        finally:
            browser.close()
    assert elsewhere == [], f"The page asked other hosts for: {elsewhere}"
