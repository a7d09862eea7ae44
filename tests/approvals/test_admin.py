"""Four-eyes approvals through the admin (Django test client): every permission boundary.

Personas (tests/approvals/personas.py): the requester may grant, adjust and
refund but not approve; the approver may also approve; the outsider is staff
with none of those permissions.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalThreshold
from approvals.services import approval_reject, approval_request_create
from billing.models import LedgerEntry, Wallet
from refunds.models import RefundLog
from tests.approvals.personas import approver, requester, staff_with, threshold
from tests.factories import AccountFactory, charge_for, default_credit_type, funded_account

pytestmark = pytest.mark.django_db

ACCOUNTS = "/admin/accounts/account/"
REQUESTS = "/admin/approvals/approvalrequest/"


@pytest.fixture(autouse=True)
def _threshold(settings):
    threshold(settings, credits="1000")


def balance(account) -> Decimal:
    return Wallet.objects.get(account=account).balance


def money_action(client, account, action="grant_credits", amount="5000.00"):
    return client.post(
        ACCOUNTS,
        {
            "action": action,
            ACTION_CHECKBOX_NAME: [account.pk],
            "credit_type": "credits",
            "amount": amount,
            "reason": "enterprise trial",
            "apply": "1",
        },
        follow=True,
    )


def messages_of(response) -> str:
    return " | ".join(str(m) for m in get_messages(response.wsgi_request))


def page(approval) -> str:
    return f"{REQUESTS}{approval.pk}/change/"


def decide(client, approval, verb="approve", note="ok"):
    return client.post(f"{REQUESTS}{approval.pk}/{verb}/", {"note": note})


def pending_grant(account, by, amount="5000.00") -> ApprovalRequest:
    return approval_request_create(
        kind="grant",
        account=account,
        credit_type=default_credit_type(),
        amount=amount,
        reason="enterprise trial",
        requested_by=by,
    )


# --- asking through the existing forms ----------------------------------------------------


def test_a_grant_at_or_below_the_threshold_posts_at_once(client):
    client.force_login(requester())
    account = funded_account("10.00")
    money_action(client, account, amount="1000.00")
    assert balance(account) == Decimal("1010.00") and not ApprovalRequest.objects.exists()


def test_a_grant_above_the_threshold_waits_and_changes_no_balance(client):
    user = requester()
    client.force_login(user)
    account = funded_account("10.00")
    response = money_action(client, account, amount="5000.00")
    approval = ApprovalRequest.objects.get()
    assert (approval.kind, approval.status, approval.amount, approval.requested_by) == (
        "grant",
        "pending",
        Decimal("5000.00"),
        user,
    )
    assert balance(account) == Decimal("10.00") and LedgerEntry.objects.filter(account=account).count() == 1
    text = messages_of(response)
    assert "Grant of 5,000.00 credits to <a href=" in text and account.public_id in text
    assert "is waiting for approval" in text and page(approval) in text


def test_an_adjustment_above_the_threshold_waits(client):
    client.force_login(requester())
    account = funded_account("3000.00")
    response = money_action(client, account, action="adjust_balance", amount="-2000.00")
    approval = ApprovalRequest.objects.get()
    assert (approval.kind, approval.amount) == ("adjustment", Decimal("-2000.00"))
    assert balance(account) == Decimal("3000.00")
    assert "Adjustment of -2,000.00 credits to" in messages_of(response)


def test_a_staff_refund_above_the_threshold_waits(client):
    client.force_login(requester())
    account = funded_account("5000.00")
    charge = charge_for(account, "2000.00")
    response = client.post(
        f"/admin/billing/ledgerentry/{charge.pk}/refund/",
        {"amount": "", "reason": "customer_service", "note": "ticket 7"},
        follow=True,
    )
    approval = ApprovalRequest.objects.get()
    assert (approval.kind, approval.amount, approval.charge, approval.refund_reason, approval.note) == (
        "refund",
        Decimal("2000.00"),
        charge,
        "customer_service",
        "ticket 7",
    )
    assert not RefundLog.objects.exists() and balance(account) == Decimal("3000.00")
    assert "Refund of 2,000.00 credits of <a href=" in messages_of(response)


def test_the_refund_action_holds_back_only_the_charges_above_the_threshold(client):
    client.force_login(requester())
    account = funded_account("5000.00")
    small, large = charge_for(account, "10.00"), charge_for(account, "2000.00")
    client.post(
        "/admin/billing/ledgerentry/",
        {
            "action": "refund_charges",
            ACTION_CHECKBOX_NAME: [small.pk, large.pk],
            "apply": "1",
            "reason": "backend_failure",
            "note": "outage",
        },
    )
    assert list(RefundLog.objects.values_list("charge", flat=True)) == [small.pk]
    assert ApprovalRequest.objects.get().charge == large


def test_the_admin_threshold_overrides_the_environment_in_the_form(client):
    ApprovalThreshold.objects.create(credit_type=default_credit_type(), threshold=Decimal("10"))
    client.force_login(requester())
    account = funded_account("10.00")
    money_action(client, account, amount="50.00")
    assert ApprovalRequest.objects.get().amount == Decimal("50.00") and balance(account) == Decimal("10.00")


# --- permission boundaries -------------------------------------------------------------


def test_staff_without_the_grant_permission_cannot_ask(client):
    client.force_login(staff_with("accounts.view_account", "accounts.change_account"))
    account = funded_account("10.00")
    money_action(client, account)
    assert not ApprovalRequest.objects.exists() and balance(account) == Decimal("10.00")


def test_staff_without_the_adjust_permission_cannot_ask(client):
    client.force_login(staff_with("accounts.view_account", "accounts.change_account", "accounts.grant_credits"))
    account = funded_account("3000.00")
    money_action(client, account, action="adjust_balance", amount="-2000.00")
    assert not ApprovalRequest.objects.exists() and balance(account) == Decimal("3000.00")


def test_staff_without_the_refund_permission_cannot_ask(client):
    client.force_login(staff_with("billing.view_ledgerentry"))
    charge = charge_for(funded_account("5000.00"), "2000.00")
    response = client.post(f"/admin/billing/ledgerentry/{charge.pk}/refund/", {"reason": "other", "note": "x"})
    assert response.status_code == 403 and not ApprovalRequest.objects.exists()


def test_the_approver_sees_approve_and_reject_on_a_pending_request(client):
    approval = pending_grant(funded_account("10.00"), requester())
    client.force_login(approver())
    html = client.get(page(approval)).content.decode()
    assert 'id="approve-button"' in html and 'id="reject-button"' in html and "csrfmiddlewaretoken" in html
    assert "Grant of 5,000.00 credits to" in html
    # The decision form closes before the admin's own form opens: forms do not nest.
    opened = html.index('id="approval-form"')
    assert html.index("</form>", opened) < html.index('id="approvalrequest_form"')


def test_the_requester_sees_no_buttons_and_cannot_approve_their_own(client):
    asker = approver()  # even holding the approve permission
    account = funded_account("10.00")
    approval = pending_grant(account, asker)
    client.force_login(asker)
    html = client.get(page(approval)).content.decode()
    assert 'id="approve-button"' not in html and "another staff user has to approve" in html
    response = decide(client, approval)
    assert response.status_code == 302
    assert "another staff user has to approve or reject" in messages_of(response)
    approval.refresh_from_db()
    assert approval.status == "pending" and balance(account) == Decimal("10.00")


def test_a_staff_user_without_the_approve_permission_is_refused(client):
    account = funded_account("10.00")
    approval = pending_grant(account, requester())
    client.force_login(requester())
    html = client.get(page(approval)).content.decode()
    assert 'id="approve-button"' not in html
    assert decide(client, approval).status_code == 403
    assert decide(client, approval, "reject").status_code == 403
    approval.refresh_from_db()
    assert approval.status == "pending" and balance(account) == Decimal("10.00")


def test_staff_with_no_approval_permission_cannot_see_the_requests(client):
    approval = pending_grant(funded_account("10.00"), requester())
    client.force_login(staff_with("billing.view_ledgerentry"))
    assert client.get(REQUESTS).status_code == 403
    assert client.get(page(approval)).status_code == 403


def test_deciding_needs_a_post(client):
    approval = pending_grant(funded_account("10.00"), requester())
    client.force_login(approver())
    assert client.get(f"{REQUESTS}{approval.pk}/approve/").status_code == 405


# --- deciding --------------------------------------------------------------------------


def test_approving_posts_once_and_the_entry_names_requester_and_approver(client):
    asker, checker = requester(), approver()
    account = funded_account("10.00")
    approval = pending_grant(account, asker)
    client.force_login(checker)
    response = decide(client, approval, note="invoice paid")
    assert response.status_code == 302 and response.url == page(approval)
    approval.refresh_from_db()
    entry = approval.ledger_entry
    assert (approval.status, approval.decided_by, approval.decision_note) == ("approved", checker, "invoice paid")
    assert (entry.actor_user, entry.approver_user, entry.amount) == (asker, checker, Decimal("5000.00"))
    assert balance(account) == Decimal("5010.00")
    text = messages_of(response)
    assert "Approved" in text and entry.public_id in text and "balance 5,010.00 credits" in text
    decide(client, approval)  # a second click
    assert LedgerEntry.objects.filter(account=account).count() == 2 and balance(account) == Decimal("5010.00")


def test_the_entry_page_shows_requester_and_approver(client):
    asker, checker = requester(username="asker"), approver(username="checker")
    approval = pending_grant(funded_account("10.00"), asker)
    client.force_login(checker)
    decide(client, approval)
    approval.refresh_from_db()
    html = client.get(f"/admin/billing/ledgerentry/{approval.ledger_entry_id}/change/").content.decode()
    assert "asker" in html and "checker" in html
    listing = client.get("/admin/billing/ledgerentry/").content.decode()
    assert "staff: asker, approved by checker" in listing


def test_rejecting_posts_nothing(client):
    account = funded_account("10.00")
    approval = pending_grant(account, requester())
    client.force_login(approver())
    response = decide(client, approval, "reject", note="above policy")
    approval.refresh_from_db()
    assert approval.status == "rejected" and approval.decision_note == "above policy"
    assert balance(account) == Decimal("10.00") and "Nothing was posted" in messages_of(response)


def test_rejecting_without_a_note_is_refused(client):
    approval = pending_grant(funded_account("10.00"), requester())
    client.force_login(approver())
    response = decide(client, approval, "reject", note="")
    approval.refresh_from_db()
    assert approval.status == "pending" and "Say why" in messages_of(response)


def test_rejecting_with_a_blank_note_is_refused(client):
    approval = pending_grant(funded_account("10.00"), requester())
    client.force_login(approver())
    response = decide(client, approval, "reject", note="   ")
    approval.refresh_from_db()
    assert approval.status == "pending" and approval.decided_by is None and "Say why" in messages_of(response)


def test_an_expired_request_cannot_be_approved(client):
    account = funded_account("10.00")
    approval = pending_grant(account, requester())
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(approver())
    html = client.get(page(approval)).content.decode()
    assert 'id="approve-button"' not in html and "can no longer be approved" in html
    response = decide(client, approval)
    assert "expired" in messages_of(response)
    approval.refresh_from_db()
    assert approval.status == "expired" and balance(account) == Decimal("10.00")


def test_a_decided_request_is_read_only(client):
    account = funded_account("10.00")
    checker = approver()
    approval = approval_reject(approval=pending_grant(account, requester()), approver=checker, note="no")
    client.force_login(checker)
    html = client.get(page(approval)).content.decode()
    assert 'id="approve-button"' not in html and 'name="_save"' not in html and "Decided by" in html
    response = decide(client, approval)
    assert "already rejected" in messages_of(response)
    assert client.post(page(approval), {"status": "approved"}).status_code == 403
    assert client.post(f"{REQUESTS}{approval.pk}/delete/").status_code == 403
    approval.refresh_from_db()
    assert approval.status == "rejected" and balance(account) == Decimal("10.00")


def test_requests_cannot_be_added_from_the_admin(client):
    client.force_login(approver())
    assert client.get(f"{REQUESTS}add/").status_code == 403


# --- the list ------------------------------------------------------------------------


def test_the_list_filters_by_status_kind_credit_type_and_requester(client):
    alice, bob = requester(username="alice"), requester(username="bob")
    account = funded_account("10.00")
    waiting = pending_grant(account, alice)
    other = pending_grant(account, bob, amount="7000.00")
    rejected = approval_reject(approval=pending_grant(account, alice), approver=approver(), note="no")
    client.force_login(approver())

    def listed(query: str) -> set[str]:
        response = client.get(f"{REQUESTS}?{query}")
        assert response.status_code == 200
        return {row.public_id for row in response.context["cl"].result_list}

    assert listed("status__exact=pending") == {waiting.public_id, other.public_id}
    assert listed("status__exact=rejected") == {rejected.public_id}
    assert listed("kind__exact=grant") == {waiting.public_id, other.public_id, rejected.public_id}
    assert listed("kind__exact=refund") == set()
    assert listed(f"credit_type__id__exact={default_credit_type().pk}") == {
        waiting.public_id,
        other.public_id,
        rejected.public_id,
    }
    assert listed(f"requested_by__id__exact={bob.pk}") == {other.public_id}
    html = client.get(REQUESTS).content.decode()
    assert "7,000.00" in html and "7000.000000000" not in html


def test_the_account_page_shows_what_waits_for_approval(client):
    account = funded_account("10.00")
    approval = pending_grant(account, requester())
    client.force_login(approver())
    html = client.get(f"{ACCOUNTS}{account.pk}/change/").content.decode()
    assert 'id="account-approvals"' in html and approval.public_id in html and "5,000.00" in html


def test_an_account_with_nothing_waiting_has_no_approvals_panel(client):
    account = AccountFactory()
    client.force_login(approver())
    assert 'id="account-approvals"' not in client.get(f"{ACCOUNTS}{account.pk}/change/").content.decode()


def test_the_header_search_finds_a_request_by_its_id(client):
    approval = pending_grant(funded_account("10.00"), requester())
    client.force_login(approver())
    response = client.get("/admin/search/", {"q": approval.public_id})
    assert response.status_code == 302 and response["Location"] == page(approval)


def test_a_refund_request_page_shows_only_refund_fields(client):
    account = funded_account("5000.00")
    charge = charge_for(account, "2000.00")
    approval = approval_request_create(
        kind="refund",
        account=account,
        credit_type=default_credit_type(),
        amount="1500.00",
        charge=charge,
        refund_reason="duplicate",
        note="double charge",
        requested_by=requester(),
    )
    client.force_login(approver())
    html = client.get(page(approval)).content.decode()
    assert "Refund of 1,500.00 credits of" in html and charge.public_id in html and "double charge" in html
    assert "Refund reason" in html and "field-reason" not in html


# --- thresholds ------------------------------------------------------------------------


def test_staff_with_the_permission_set_a_threshold_that_overrides_the_environment(client):
    client.force_login(
        staff_with(
            *[
                "approvals.add_approvalthreshold",
                "approvals.change_approvalthreshold",
                "approvals.view_approvalthreshold",
            ]
        )
    )
    credits = default_credit_type()
    response = client.post(
        "/admin/approvals/approvalthreshold/add/", {"credit_type": credits.pk, "threshold": "250", "note": "policy"}
    )
    assert response.status_code == 302
    assert ApprovalThreshold.objects.get(credit_type=credits).threshold == Decimal("250")
    html = client.get("/admin/approvals/approvalthreshold/").content.decode()
    assert "250.00" in html and "1,000.00" in html  # the row, and the environment default beside it


def test_staff_without_the_permission_cannot_change_thresholds(client):
    client.force_login(approver())
    response = client.post(
        "/admin/approvals/approvalthreshold/add/", {"credit_type": default_credit_type().pk, "threshold": "0"}
    )
    assert response.status_code == 403 and not ApprovalThreshold.objects.exists()
