"""A ledger entry's page: where it points (account, wallet, hold, task), its pricing, and a charge's refunds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from billing.services import Actor, charge_create, hold_capture, hold_create
from pricing.selectors import catalogue_cache_clear
from pricing.services import Usage, price_create, price_quote
from refunds.services import refund_issue
from tests.factories import UserFactory, default_credit_type, funded_account

pytestmark = pytest.mark.django_db


def _page(client, entry) -> str:
    response = client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_priced_charge_shows_its_pricing_and_links(admin_client):
    catalogue_cache_clear()
    price = price_create(
        key="acme/chat", credit_type=default_credit_type(), per_1k_input_tokens="2", per_1k_output_tokens="0.0004"
    )
    quote = price_quote(key="acme/chat", usage=Usage(input_tokens=1000, output_tokens=500))
    account = funded_account("10.00")
    charge = charge_create(
        account=account, credit_type=quote.credit_type, quote=quote, task_id="job-9", actor=Actor.system()
    )
    page = _page(admin_client, charge)
    assert 'id="entry-pricing"' in page and "acme/chat" in page
    assert f'href="/admin/pricing/price/{price.pk}/change/"' in page
    assert "input_tokens: 1000" in page
    assert "0.0004" in page and "0.000400000" not in page  # unit prices normalised
    assert f'href="/admin/accounts/account/{account.pk}/change/"' in page
    assert f'href="/admin/billing/wallet/{charge.wallet_id}/change/"' in page
    assert 'href="/admin/billing/ledgerentry/?q=job-9"' in page
    catalogue_cache_clear()


def test_a_captured_hold_s_charge_links_its_hold(admin_client):
    account = funded_account("10.00")
    hold = hold_create(account=account, credit_type=default_credit_type(), amount="4", actor=Actor.system())
    hold = hold_capture(hold=hold, amount="3", actor=Actor.system())
    page = _page(admin_client, hold.capture_entry)
    assert f'href="/admin/billing/hold/{hold.pk}/change/"' in page and hold.public_id in page


def test_a_charge_lists_its_refunds_and_what_remains(admin_client):
    account = funded_account("100.00")
    charge = charge_create(account=account, credit_type=default_credit_type(), amount="10", actor=Actor.system())
    first = refund_issue(charge=charge, amount="2.5", reason="duplicate", actor=Actor.system())
    page = _page(admin_client, charge)
    assert f'href="/admin/refunds/refundlog/{first.pk}/change/"' in page
    assert f'href="/admin/billing/ledgerentry/{first.refund_entry_id}/change/"' in page
    assert "7.50 refundable" in page and "refunded <span" in page
    refund_issue(charge=charge, reason="duplicate", actor=Actor.system())  # the rest
    page = _page(admin_client, charge)
    assert "Refunded in full" in page
    assert f'href="/admin/refunds/refundlog/?q={charge.public_id}" class="historylink" id="refund-state"' in page
    assert "0.00 refundable" in page
    # The refund's own page links back to its charge.
    assert f'href="/admin/billing/ledgerentry/{charge.pk}/change/" id="entry-related"' in _page(
        admin_client, first.refund_entry
    )


def test_the_entry_page_needs_the_view_permission(client):
    entry = charge_create(
        account=funded_account("5"), credit_type=default_credit_type(), amount=Decimal("1"), actor=Actor.system()
    )
    staff = UserFactory()
    client.force_login(staff)
    assert client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    client.force_login(type(staff).objects.get(pk=staff.pk))
    page = _page(client, entry)
    assert 'id="entry-refunds"' in page and 'id="refund-button"' not in page  # no refund permission
