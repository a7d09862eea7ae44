"""Four-eyes approval in a real browser: staff A asks for a large grant, staff B approves it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from approvals.models import ApprovalRequest
from billing.models import Wallet
from tests.approvals.personas import approver, requester, threshold
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.factories import funded_account


def log_in(page, base_url: str, user, next_url: str) -> None:
    page.goto(f"{base_url}/admin/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}{next_url}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_grant_above_the_threshold_waits_for_a_second_staff_user(live_server, settings):
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    # ORM work stays outside the Playwright block (its event loop forbids sync queries on this thread).
    threshold(settings, credits="1000")
    account = funded_account("10.00", name="Big Buyer")
    staff_a, staff_b = requester(username="alice"), approver(username="bob")
    account_path = f"/admin/accounts/account/{account.pk}/change/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            # Staff A asks through the account page's Grant button.
            a = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            a.set_default_timeout(20_000)
            log_in(a, live_server.url, staff_a, account_path)
            a.click("#grant_credits-button")
            a.select_option("#id_credit_type", "credits")
            a.fill("#id_amount", "5000")
            a.fill("#id_reason", "enterprise trial")
            a.click("input[type=submit][value='Grant credits']")
            message = a.locator(".messagelist")
            expect(message).to_contain_text(f"Grant of 5,000.00 credits to {account.public_id}")
            expect(message).to_contain_text("is waiting for approval")
            a.click(".messagelist a:has-text('apr_')")
            request_path = a.url.removeprefix(live_server.url)
            expect(a.locator("#approval-waiting")).to_contain_text("another staff user has to approve")
            expect(a.locator("#approve-button")).to_have_count(0)
            a.goto(f"{live_server.url}{account_path}")
            expect(a.locator("#account-summary")).to_contain_text("10.00")
            expect(a.locator("#account-approvals")).to_contain_text("5,000.00")

            # Staff B, in a session of their own, approves it with a note.
            b = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            b.set_default_timeout(20_000)
            log_in(b, live_server.url, staff_b, request_path)
            expect(b.locator("#approval-decision")).to_contain_text("Grant of 5,000.00 credits to")
            b.fill("#id_note", "invoice 2026-114 paid")
            b.click("#approve-button")
            expect(b.locator(".messagelist")).to_contain_text("Approved")
            expect(b.locator(".messagelist")).to_contain_text("balance 5,010.00 credits")
            expect(b.locator("#approval-decided")).to_contain_text("invoice 2026-114 paid")
            expect(b.locator("#approve-button")).to_have_count(0)

            b.click(f"#approval-decision a:has-text('{account.public_id}')")
            expect(b.locator("#account-summary")).to_contain_text("5,010.00")
        finally:
            browser.close()

    assert Wallet.objects.get(account=account).balance == Decimal("5010.00")
    approval = ApprovalRequest.objects.get()
    assert (approval.status, approval.requested_by, approval.decided_by) == ("approved", staff_a, staff_b)
    assert (approval.ledger_entry.actor_user, approval.ledger_entry.approver_user) == (staff_a, staff_b)
