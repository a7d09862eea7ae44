"""Staff refunds from the ledger admin, and the refund log's admin and stats page."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from billing.models import Wallet
from billing.services import Actor
from refunds.models import RefundLog
from refunds.services import refund_issue
from tests.factories import charge_for, funded_account, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def refunder(client):
    """A staff user with the refund permission, logged in."""
    user = staff_user(can_refund=True)
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client):
    """A staff user who may read the ledger but not refund."""
    user = staff_user(can_refund=False)
    client.force_login(user)
    return user


def refund_url(entry) -> str:
    return f"/admin/billing/ledgerentry/{entry.pk}/refund/"


def balance_of(account) -> Decimal:
    return Wallet.objects.get(account=account).balance


def test_charge_page_shows_a_refund_button_with_what_remains(client, refunder):
    charge = charge_for(funded_account("10.00"), "4.00")
    refund_issue(charge=charge, amount="1.00", reason="timeout", actor=Actor.system())
    page = client.get(f"/admin/billing/ledgerentry/{charge.pk}/change/").content.decode()
    assert refund_url(charge) in page and "Refund (3.00 refundable)" in page


def test_refund_form_shows_refunded_and_remaining(client, refunder):
    charge = charge_for(funded_account("10.00"), "4.00")
    refund_issue(charge=charge, amount="1.50", reason="timeout", actor=Actor.system())
    response = client.get(refund_url(charge))
    assert response.status_code == 200
    assert response.context["refunded"] == Decimal("1.50") and response.context["refundable"] == Decimal("2.50")


def test_staff_refund_through_the_form_calls_the_service_and_records_the_user(client, refunder):
    account = funded_account("10.00")
    charge = charge_for(account, "4.00")
    response = client.post(refund_url(charge), {"amount": "2.50", "reason": "customer_service", "note": "ticket 42"})
    assert response.status_code == 302 and response.url.endswith(f"/ledgerentry/{charge.pk}/change/")
    log = RefundLog.objects.get(charge=charge)
    assert (log.amount, log.reason, log.note, log.actor_user) == (
        Decimal("2.50"),
        "customer_service",
        "ticket 42",
        refunder,
    )
    assert log.refund_entry.actor_user == refunder
    assert balance_of(account) == Decimal("8.50")


def test_staff_refund_without_amount_refunds_what_remains(client, refunder):
    account = funded_account("10.00")
    charge = charge_for(account, "4.00")
    refund_issue(charge=charge, amount="1.00", reason="timeout", actor=Actor.system())
    client.post(refund_url(charge), {"amount": "", "reason": "duplicate", "note": "double charge"})
    assert balance_of(account) == Decimal("10.00")


def test_staff_refund_beyond_what_remains_shows_the_error_and_changes_nothing(client, refunder):
    account = funded_account("10.00")
    charge = charge_for(account, "4.00")
    response = client.post(refund_url(charge), {"amount": "4.01", "reason": "other", "note": "too much"})
    assert response.status_code == 200
    assert "remains refundable" in response.content.decode()
    assert balance_of(account) == Decimal("6.00") and not RefundLog.objects.exists()


def test_staff_without_the_permission_is_refused(client, viewer):
    account = funded_account("10.00")
    charge = charge_for(account, "4.00")
    page = client.get(f"/admin/billing/ledgerentry/{charge.pk}/change/")
    assert page.status_code == 200 and refund_url(charge) not in page.content.decode()
    assert client.get(refund_url(charge)).status_code == 403
    response = client.post(refund_url(charge), {"amount": "1.00", "reason": "other", "note": "x"})
    assert response.status_code == 403
    response = client.post(
        "/admin/billing/ledgerentry/",
        {"action": "refund_charges", ACTION_CHECKBOX_NAME: [charge.pk], "apply": "1", "reason": "other", "note": "x"},
    )
    assert not RefundLog.objects.exists() and balance_of(account) == Decimal("6.00")


def test_refund_action_asks_then_refunds_each_selected_charge(client, refunder):
    account = funded_account("10.00")
    first, second = charge_for(account, "1.00"), charge_for(account, "2.00")
    selection = {"action": "refund_charges", ACTION_CHECKBOX_NAME: [first.pk, second.pk]}
    page = client.post("/admin/billing/ledgerentry/", selection)
    assert page.status_code == 200 and b"Refund charges" in page.content
    response = client.post(
        "/admin/billing/ledgerentry/", {**selection, "apply": "1", "reason": "backend_failure", "note": "outage"}
    )
    assert response.status_code == 302
    assert RefundLog.objects.filter(actor_user=refunder, reason="backend_failure").count() == 2
    assert balance_of(account) == Decimal("10.00")


def test_refund_of_a_grant_is_refused_from_the_admin(client, refunder):
    account = funded_account("10.00")
    grant = account.ledger_entries.get(kind="grant")
    response = client.post(refund_url(grant), {"reason": "other", "note": "x"})
    assert response.status_code == 302 and not RefundLog.objects.exists()


def test_refund_log_is_read_only_and_filterable(client, refunder):
    charge = charge_for(funded_account("10.00"), "1.00")
    log = refund_issue(charge=charge, reason="timeout", api_route="/api/chat", actor=Actor.system())
    listing = client.get("/admin/refunds/refundlog/", {"reason": "timeout", "api_route": "/api/chat"})
    assert listing.status_code == 200 and log.public_id in listing.content.decode()
    assert client.get("/admin/refunds/refundlog/", {"reason": "duplicate"}).context["cl"].result_count == 0
    assert client.get("/admin/refunds/refundlog/add/").status_code == 403
    detail = client.get(f"/admin/refunds/refundlog/{log.pk}/change/")
    assert detail.status_code == 200
    client.post(f"/admin/refunds/refundlog/{log.pk}/change/", {"amount": "99"})
    log.refresh_from_db()
    assert log.amount == Decimal("1.00")


def test_stats_page_shows_refunds_by_route_and_reason_with_a_chart(client, refunder):
    account = funded_account("10.00")
    for reason, route in [("timeout", "/api/chat"), ("timeout", "/api/chat"), ("api_error", "/api/image")]:
        refund_issue(charge=charge_for(account, "1.00"), reason=reason, api_route=route, actor=Actor.system())
    response = client.get("/admin/refunds/refundlog/stats/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<svg" in page and "/api/chat" in page and "/api/image" in page
    assert response.context["stats"]["count"] == 3
    bars = {bar["label"]: bar["count"] for bar in response.context["reason_chart"]["bars"]}
    assert bars == {"Timeout": 2, "API error": 1}
    empty = client.get("/admin/refunds/refundlog/stats/", {"since": "2000-01-01", "until": "2000-01-31"})
    assert empty.context["stats"]["count"] == 0


def test_holds_are_visible_in_the_admin(client, refunder):
    from django.contrib.auth.models import Permission

    from tests.factories import hold_for

    hold = hold_for(funded_account("10.00"), "2.00", task_id="job-7")
    refunder.user_permissions.add(Permission.objects.get(codename="view_hold"))
    listing = client.get("/admin/billing/hold/", {"status": "pending"})
    assert listing.status_code == 200 and hold.public_id in listing.content.decode()
