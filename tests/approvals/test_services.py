"""Four-eyes approvals, service by service: ask, approve once, reject, expire."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from approvals.exceptions import (
    ApprovalExpired,
    ApprovalNotPending,
    ApproverPermissionRequired,
    InvalidApprovalRequest,
    SelfApprovalRefused,
)
from approvals.models import ApprovalRequest, ApprovalThreshold
from approvals.selectors import approval_needed, approval_threshold, pending_approvals
from approvals.services import approval_approve, approval_reject, approval_request_create, approvals_expire_due
from billing.exceptions import InsufficientCredits
from billing.models import LedgerEntry, Wallet
from refunds.models import RefundLog
from tests.approvals.personas import approver, requester, threshold
from tests.factories import CreditTypeFactory, charge_for, default_credit_type, funded_account

pytestmark = pytest.mark.django_db


def balance(account) -> Decimal:
    return Wallet.objects.get(account=account).balance


def grant_request(account, amount="5000.00", by=None, **kwargs) -> ApprovalRequest:
    return approval_request_create(
        kind="grant",
        account=account,
        credit_type=default_credit_type(),
        amount=amount,
        reason="enterprise trial",
        requested_by=by or requester(),
        **kwargs,
    )


# --- thresholds ---------------------------------------------------------------------


def test_without_a_threshold_nothing_needs_approval(settings):
    threshold(settings)
    assert approval_threshold(credit_type=default_credit_type()) is None
    assert not approval_needed(credit_type=default_credit_type(), amount=Decimal("1000000"))


def test_the_environment_threshold_applies_above_not_at_the_amount(settings):
    threshold(settings, credits="1000")
    credits = default_credit_type()
    assert not approval_needed(credit_type=credits, amount=Decimal("1000.00"))
    assert approval_needed(credit_type=credits, amount=Decimal("1000.01"))


def test_an_adjustment_is_measured_by_its_size(settings):
    threshold(settings, credits="1000")
    assert approval_needed(credit_type=default_credit_type(), amount=Decimal("-1000.01"))


def test_a_credit_type_not_named_needs_no_approval(settings):
    threshold(settings, usd="100")
    assert not approval_needed(credit_type=default_credit_type(), amount=Decimal("5000"))


def test_the_admin_threshold_overrides_the_environment(settings):
    threshold(settings, credits="1000")
    ApprovalThreshold.objects.create(credit_type=default_credit_type(), threshold=Decimal("50"))
    assert approval_threshold(credit_type=default_credit_type()) == Decimal("50")
    assert approval_needed(credit_type=default_credit_type(), amount=Decimal("50.01"))


def test_an_empty_admin_threshold_turns_approval_off_for_its_type(settings):
    threshold(settings, credits="1000")
    ApprovalThreshold.objects.create(credit_type=default_credit_type(), threshold=None)
    assert not approval_needed(credit_type=default_credit_type(), amount=Decimal("1000000"))


# --- asking -------------------------------------------------------------------------


def test_a_request_posts_nothing_and_expires_after_the_ttl(settings):
    settings.CREDITLEDGER_APPROVAL_TTL = timedelta(hours=72)
    account = funded_account("10.00")
    before = timezone.now()
    approval = grant_request(account)
    assert approval.status == "pending" and approval.amount == Decimal("5000.00")
    assert balance(account) == Decimal("10.00") and LedgerEntry.objects.filter(account=account).count() == 1
    assert before + timedelta(hours=72) <= approval.expires_at <= timezone.now() + timedelta(hours=72)


def test_a_request_is_refused_at_more_places_than_the_scale():
    with pytest.raises(Exception) as excinfo:
        grant_request(funded_account(), amount="1.005")
    assert getattr(excinfo.value, "code", "") == "invalid_amount"


def test_a_refund_request_must_name_a_charge_of_that_account():
    account = funded_account("10.00")
    other_charge = charge_for(funded_account("10.00"), "1.00")
    with pytest.raises(InvalidApprovalRequest):
        approval_request_create(
            kind="refund",
            account=account,
            credit_type=default_credit_type(),
            amount="1.00",
            charge=other_charge,
            refund_reason="other",
            requested_by=requester(),
        )


# --- approving ----------------------------------------------------------------------


def test_approving_posts_the_grant_once_naming_requester_and_approver():
    account = funded_account("10.00")
    asker, checker = requester(), approver()
    approval = approval_approve(approval=grant_request(account, by=asker), approver=checker, note="invoice paid")
    entry = approval.ledger_entry
    assert (approval.status, approval.decided_by, approval.decision_note) == ("approved", checker, "invoice paid")
    assert (entry.kind, entry.amount, entry.actor_user, entry.approver_user) == (
        "grant",
        Decimal("5000.00"),
        asker,
        checker,
    )
    assert entry.description == "enterprise trial" and entry.metadata["approval"] == approval.public_id
    assert balance(account) == Decimal("5010.00")


def test_approving_an_adjustment_posts_it_signed():
    account = funded_account("3000.00")
    approval = approval_request_create(
        kind="adjustment",
        account=account,
        credit_type=default_credit_type(),
        amount="-2000.00",
        reason="duplicate top-up",
        requested_by=requester(),
    )
    entry = approval_approve(approval=approval, approver=approver()).ledger_entry
    assert (entry.kind, entry.amount) == ("adjustment", Decimal("-2000.00"))
    assert balance(account) == Decimal("1000.00")


def test_approving_a_refund_writes_the_refund_log_with_both_users():
    account = funded_account("5000.00")
    charge = charge_for(account, "2000.00")
    asker, checker = requester(), approver()
    approval = approval_request_create(
        kind="refund",
        account=account,
        credit_type=default_credit_type(),
        amount="1500.00",
        charge=charge,
        refund_reason="customer_service",
        note="ticket 7",
        requested_by=asker,
    )
    approval = approval_approve(approval=approval, approver=checker)
    log = RefundLog.objects.get(charge=charge)
    assert approval.refund_log == log and approval.ledger_entry == log.refund_entry
    assert (log.amount, log.reason, log.note, log.actor_user, log.approver_user) == (
        Decimal("1500.00"),
        "customer_service",
        "ticket 7",
        asker,
        checker,
    )
    assert log.refund_entry.approver_user == checker
    assert balance(account) == Decimal("4500.00")


def test_a_second_approval_posts_nothing():
    account = funded_account("10.00")
    approval = grant_request(account)
    approval_approve(approval=approval, approver=approver())
    with pytest.raises(ApprovalNotPending):
        approval_approve(approval=approval, approver=approver())
    assert LedgerEntry.objects.filter(account=account, kind="grant").count() == 2  # the funding and this one
    assert balance(account) == Decimal("5010.00")


def test_the_requester_cannot_approve_their_own_request():
    account = funded_account("10.00")
    asker = approver()
    approval = grant_request(account, by=asker)
    with pytest.raises(SelfApprovalRefused):
        approval_approve(approval=approval, approver=asker)
    with pytest.raises(SelfApprovalRefused):
        approval_reject(approval=approval, approver=asker, note="never mind")
    approval.refresh_from_db()
    assert approval.status == "pending" and balance(account) == Decimal("10.00")


def test_a_staff_user_without_the_approve_permission_cannot_approve():
    account = funded_account("10.00")
    approval = grant_request(account)
    with pytest.raises(ApproverPermissionRequired):
        approval_approve(approval=approval, approver=requester())
    approval.refresh_from_db()
    assert approval.status == "pending" and balance(account) == Decimal("10.00")


def test_an_expired_request_cannot_be_approved_and_is_marked_expired():
    account = funded_account("10.00")
    approval = grant_request(account)
    later = approval.expires_at + timedelta(seconds=1)
    with pytest.raises(ApprovalExpired):
        approval_approve(approval=approval, approver=approver(), now=later)
    approval.refresh_from_db()
    assert approval.status == "expired" and approval.decided_by is None and approval.ledger_entry is None
    assert balance(account) == Decimal("10.00")


def test_a_refused_posting_leaves_the_request_pending():
    account = funded_account("10.00")
    approval = approval_request_create(
        kind="adjustment",
        account=account,
        credit_type=default_credit_type(),
        amount="-2000.00",
        reason="too much",
        requested_by=requester(),
    )
    with pytest.raises(InsufficientCredits):
        approval_approve(approval=approval, approver=approver())
    approval.refresh_from_db()
    assert approval.status == "pending" and balance(account) == Decimal("10.00")


# --- rejecting ----------------------------------------------------------------------


def test_rejecting_posts_nothing_and_keeps_the_note():
    account = funded_account("10.00")
    checker = approver()
    approval = approval_reject(approval=grant_request(account), approver=checker, note="above policy")
    assert (approval.status, approval.decided_by, approval.decision_note) == ("rejected", checker, "above policy")
    assert approval.ledger_entry is None and balance(account) == Decimal("10.00")


def test_rejecting_needs_a_note():
    with pytest.raises(InvalidApprovalRequest):
        approval_reject(approval=grant_request(funded_account()), approver=approver(), note=" ")


def test_a_rejected_request_cannot_be_approved():
    account = funded_account("10.00")
    approval = approval_reject(approval=grant_request(account), approver=approver(), note="no")
    with pytest.raises(ApprovalNotPending):
        approval_approve(approval=approval, approver=approver())
    assert balance(account) == Decimal("10.00")


# --- expiry and the pending list --------------------------------------------------------


def test_the_sweep_expires_only_overdue_pending_requests():
    account = funded_account("10.00")
    overdue, fresh = grant_request(account), grant_request(account)
    decided = approval_reject(approval=grant_request(account), approver=approver(), note="no")
    ApprovalRequest.objects.filter(pk__in=[overdue.pk]).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert approvals_expire_due() == 1
    assert approvals_expire_due() == 0
    statuses = dict(ApprovalRequest.objects.values_list("pk", "status"))
    assert statuses == {overdue.pk: "expired", fresh.pk: "pending", decided.pk: "rejected"}


def test_pending_approvals_lists_what_waits_newest_first():
    account = funded_account("10.00")
    first, second = grant_request(account), grant_request(account)
    approval_reject(approval=grant_request(account), approver=approver(), note="no")
    overdue = grant_request(account)
    ApprovalRequest.objects.filter(pk=overdue.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert list(pending_approvals()) == [second, first]
    assert list(pending_approvals(limit=1)) == [second]


def test_amounts_are_kept_at_the_credit_types_scale():
    usd = CreditTypeFactory(code="usd", scale=6)
    account = funded_account("1.000000", credit_type=usd)
    approval = approval_request_create(
        kind="grant", account=account, credit_type=usd, amount="150.5", reason="x", requested_by=requester()
    )
    assert str(approval) == f"{approval.public_id} grant 150.500000 usd"


def test_a_request_records_an_approval_requested_event_with_its_amount_at_scale():
    from events.models import FeedEvent

    account = funded_account("1.00")
    approval = grant_request(account, amount="5000.5")
    (event,) = FeedEvent.objects.filter(type="approval.requested")
    assert event.account == account
    assert event.data["id"] == approval.public_id and event.data["amount"] == "5000.50"
