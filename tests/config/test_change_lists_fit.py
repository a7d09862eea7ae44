"""Every admin change list fits a 1366 px wide screen: no horizontal scrolling.

A real browser (Debian's Chromium, 1366x768) logged in as the demo's
superuser, over the demo data of `load_demo` (every list has rows), visits
the change list of every model registered in the admin and measures
`document.documentElement.scrollWidth`, and the result table against its
box: Django's `.results` scrolls sideways on its own, so a table too wide
hides its last columns without widening the page. Screenshots go to the test's
temporary directory (`--basetemp` to keep them) for a person to look at.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from tests.browser import CHROMIUM_ARGS, chromium_path

WIDTH = 1366
MAIN_LISTS = {
    "accounts.account",
    "billing.ledgerentry",
    "billing.hold",
    "refunds.refundlog",
    "pricing.price",
    "pricing.credittype",
    "auditlog.logentry",
}
# How many pixels of the result table its scrolling box hides (0 when it fits, or on an empty list).
TABLE_OVERFLOW = """() => {
    const box = document.querySelector('#changelist .results');
    return box ? Math.max(0, box.scrollWidth - box.clientWidth) : 0;
}"""


def change_lists() -> dict[str, str]:
    return {
        model._meta.label_lower: reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        for model in admin.site._registry
    }


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_change_list_fits_1366_px(live_server, monkeypatch, tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "demo-password")
    call_command("load_demo", stdout=StringIO())
    lists = change_lists()
    assert MAIN_LISTS <= set(lists)

    too_wide = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 768})
            page.set_default_timeout(20_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", "demo-password")
            page.click("input[type=submit]")
            page.wait_for_url(f"{live_server.url}/admin/")
            for label, url in sorted(lists.items()):
                page.goto(f"{live_server.url}{url}")
                assert page.locator("#changelist").count() == 1, f"{label}: no change list at {url}"
                page.screenshot(path=str(tmp_path / f"{label}.png"), full_page=True)
                width = page.evaluate("document.documentElement.scrollWidth")
                table = page.evaluate(TABLE_OVERFLOW)
                if width > WIDTH or table > 0:
                    too_wide[label] = {"page": width, "table beyond its box": table}
        finally:
            browser.close()

    assert too_wide == {}, f"change lists wider than {WIDTH} px: {too_wide}"
