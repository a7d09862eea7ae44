"""Approvals under races, on real PostgreSQL (threads on separate connections): one posting per request."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from approvals.exceptions import ApprovalNotPending
from approvals.models import ApprovalRequest
from approvals.services import approval_approve, approval_reject, approval_request_create, approvals_expire_due
from billing.models import LedgerEntry, Wallet
from tests.approvals.personas import approver, requester
from tests.concurrency import run_concurrently
from tests.factories import default_credit_type, funded_account

ROUNDS = 5


def ask(account, by) -> ApprovalRequest:
    return approval_request_create(
        kind="grant", account=account, credit_type=default_credit_type(), amount="5000.00", reason="x", requested_by=by
    )


def proven_balance(account) -> Decimal:
    """The wallet's balance, after checking that the ledger proves it."""
    wallet = Wallet.objects.get(account=account)
    assert LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"] == wallet.balance
    return wallet.balance


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_post_exactly_once():
    account = funded_account("10.00")
    asker, approvers = requester(), [approver(), approver()]
    for round_ in range(ROUNDS):
        approval = ask(account, asker)
        results = run_concurrently(lambda i, a=approval: approval_approve(approval=a, approver=approvers[i]), 2)
        assert sorted(type(r).__name__ for r in results) == ["ApprovalNotPending", "ApprovalRequest"], results
        assert LedgerEntry.objects.filter(metadata__approval=approval.public_id).count() == 1
        assert proven_balance(account) == Decimal("10.00") + Decimal("5000.00") * (round_ + 1)


@pytest.mark.django_db(transaction=True)
def test_a_double_click_posts_once():
    account = funded_account("10.00")
    asker, checker = requester(), approver()
    approval = ask(account, asker)
    results = run_concurrently(lambda i: approval_approve(approval=approval, approver=checker), 4)
    assert sum(isinstance(r, ApprovalRequest) for r in results) == 1
    assert all(isinstance(r, ApprovalRequest | ApprovalNotPending) for r in results), results
    assert proven_balance(account) == Decimal("5010.00")
    approval.refresh_from_db()
    assert approval.ledger_entry.approver_user == checker


@pytest.mark.django_db(transaction=True)
def test_approve_racing_reject_ends_in_one_decision():
    account = funded_account("10.00")
    asker, checker = requester(), approver()
    for _ in range(ROUNDS):
        approval = ask(account, asker)

        def race(i: int, approval=approval):
            if i == 0:
                return approval_approve(approval=approval, approver=checker)
            return approval_reject(approval=approval, approver=checker, note="no")

        results = run_concurrently(race, 2)
        assert sum(isinstance(r, ApprovalNotPending) for r in results) == 1, results
        approval.refresh_from_db()
        posted = LedgerEntry.objects.filter(metadata__approval=approval.public_id).count()
        assert posted == (1 if approval.status == "approved" else 0)
    proven_balance(account)


@pytest.mark.django_db(transaction=True)
def test_the_expiry_sweep_racing_an_approval_never_expires_an_approved_request():
    account = funded_account("10.00")
    asker, checker = requester(), approver()
    approval = ask(account, asker)
    at_expiry = approval.expires_at
    just_before = at_expiry - timedelta(seconds=1)  # the approver clicked in time; the sweep runs at expiry

    def race(i: int):
        if i == 0:
            return approval_approve(approval=approval, approver=checker, now=just_before)
        return approvals_expire_due(now=at_expiry)

    results = run_concurrently(race, 2)
    approval.refresh_from_db()
    assert approval.status in ("approved", "expired"), results
    assert (approval.status == "approved") == (approval.ledger_entry_id is not None)
    assert proven_balance(account) == (Decimal("5010.00") if approval.status == "approved" else Decimal("10.00"))
