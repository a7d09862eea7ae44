"""The dashboard on the admin index, through Django's test client: figures at scale, working links, permission."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from billing.services import Actor
from refunds.services import refund_issue
from tests.factories import (
    ApprovalRequestFactory,
    CreditTypeFactory,
    PricingAnomalyFactory,
    ReconciliationRunFactory,
    UserFactory,
    charge_for,
    funded_account,
    hold_for,
)

pytestmark = pytest.mark.django_db
INDEX = "/admin/"


def dashboard_html(client) -> str:
    page = client.get(INDEX).content.decode()
    match = re.search(r'<section id="console-dashboard".*?</section>', page, re.S)
    assert match, "no dashboard on the admin index"
    return match.group(0)


@pytest.fixture
def activity():
    account = funded_account("12345.00", name="Big Spender")
    charge = charge_for(account, "1234.50", route="/api/export")
    refund_issue(charge=charge, amount="234.50", reason="timeout", api_route="/api/export", actor=Actor.system())
    hold_for(account, "10.00")
    usd = CreditTypeFactory(code="usd", name="US dollars", scale=6)
    charge_for(funded_account("25", credit_type=usd), "0.123456", credit_type=usd)
    return account


def test_figures_are_shown_at_each_credit_types_scale_with_separators(admin_client, activity):
    html = dashboard_html(admin_client)
    assert 'data-figure="charged-today"><a href="' in html
    assert ">1,234.50<" in html and ">12,345.00<" in html and ">234.50<" in html
    assert ">0.123456<" in html and ">25.000000<" in html  # dollars at 6 places
    assert "19.0%" in html  # 234.50 refunded of 1,234.50 charged on /api/export
    assert "Big Spender" in html
    assert "<svg" in html and 'data-series="charged"' in html


def test_every_link_opens_its_admin_list_or_page(admin_client, activity):
    ReconciliationRunFactory(status="clean")
    PricingAnomalyFactory()
    links = {unescape(href) for href in re.findall(r'href="([^"]+)"', dashboard_html(admin_client))}
    assert len(links) > 15
    for link in links:
        response = admin_client.get(link)
        assert response.status_code == 200, link
        assert "?e=1" not in response.get("Location", ""), link  # an admin filter it does not know


def test_the_ledger_link_lists_exactly_the_charges_it_counts(admin_client, activity):
    html = dashboard_html(admin_client)
    link = unescape(re.search(r'data-figure="charged-30d"><a href="([^"]+)"', html).group(1))
    page = admin_client.get(link).content.decode()
    assert page.count('class="field-kind">Charge<') == 1 and "1,234.50" in page


def test_the_last_reconciliation_verdict_links_to_its_run(admin_client):
    run = ReconciliationRunFactory(status="drift", discrepancy_count=2)
    html = dashboard_html(admin_client)
    assert f'href="/admin/billing/reconciliationrun/{run.pk}/change/"' in html and "Drift found" in html


def test_pending_approvals_are_counted_and_link_to_their_list(admin_client):
    ApprovalRequestFactory()
    ApprovalRequestFactory()
    ApprovalRequestFactory(expires_at=timezone.now() - timedelta(minutes=1))  # past its expiry: waits no more
    html = dashboard_html(admin_client)
    assert 'href="/admin/approvals/approvalrequest/?waiting=yes" class="dash-big">2</a>' in html


def test_the_pending_approvals_link_lists_exactly_the_requests_it_counts(admin_client):
    waiting = [ApprovalRequestFactory(), ApprovalRequestFactory()]
    # Past its expiry but not yet marked expired by the sweep: still `pending`, yet no longer waiting.
    lapsed = ApprovalRequestFactory(expires_at=timezone.now() - timedelta(minutes=1))
    html = dashboard_html(admin_client)
    link = unescape(re.search(r'id="dash-approvals">.*?<a href="([^"]+)" class="dash-big">', html, re.S).group(1))
    page = admin_client.get(link).content.decode()
    assert all(approval.public_id in page for approval in waiting)
    assert lapsed.public_id not in page and "2 approval requests" in page


def test_open_pricing_anomalies_are_counted_and_link_to_the_open_ones(admin_client):
    open_ones = [PricingAnomalyFactory(), PricingAnomalyFactory()]
    resolved = PricingAnomalyFactory(resolved_at=timezone.now(), resolved_by=UserFactory())
    html = dashboard_html(admin_client)
    match = re.search(r'id="dash-anomalies">.*?<a href="([^"]+)" class="dash-big dash-warn">(\d+)</a>', html, re.S)
    assert match.group(2) == "2"
    page = admin_client.get(unescape(match.group(1))).content.decode()
    assert all(anomaly.public_id in page for anomaly in open_ones) and resolved.public_id not in page


def test_staff_who_may_not_view_the_ledger_see_no_dashboard(client, activity):
    client.force_login(UserFactory())
    response = client.get(INDEX)
    assert response.status_code == 200 and b"console-dashboard" not in response.content
