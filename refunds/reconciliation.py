"""Reconciliation of the refund log against the ledger (registered into billing's `reconcile`).

Refund statistics and the admin read `RefundLog`; the money is in the refund
entries. Each log must say what its entry did (amount, account, credit type,
the charge refunded), and every refund entry must have its log: refund_issue
writes both in one transaction, so any disagreement is an edit.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F, Q

from accounts.models import Account
from billing.models import LedgerEntry, ReconciliationDiscrepancy
from refunds.models import RefundLog

_CHUNK = 2000


def refund_log_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    """A refund log that disagrees with its refund entry, and a refund entry without a log."""
    logs = RefundLog.objects.filter(
        ~Q(refund_entry__kind=LedgerEntry.Kind.REFUND)
        | ~Q(amount=F("refund_entry__amount"))
        | ~Q(account_id=F("refund_entry__account_id"))
        | ~Q(credit_type_id=F("refund_entry__credit_type_id"))
        | Q(refund_entry__related_entry__isnull=True)
        | ~Q(charge_id=F("refund_entry__related_entry_id"))
    )
    if account is not None:
        logs = logs.filter(account=account)
    rows = logs.values_list("public_id", "refund_entry_id", "refund_entry__wallet_id", "amount", "refund_entry__amount")
    for public_id, entry_id, wallet_id, logged, booked in rows.iterator(chunk_size=_CHUNK):
        yield ReconciliationDiscrepancy(
            kind=ReconciliationDiscrepancy.Kind.REFUND_LOG_MISMATCH,
            wallet_id=wallet_id,
            ledger_entry_id=entry_id,
            expected=booked,
            actual=logged,
            detail=(
                f"Refund log {public_id} disagrees with its refund entry "
                "(amount, account, credit type or charge; expected=entry, actual=log)."
            ),
        )
    orphans = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND, refund_log__isnull=True)
    if account is not None:
        orphans = orphans.filter(account=account)
    for entry_id, public_id, wallet_id, amount in orphans.values_list(
        "id", "public_id", "wallet_id", "amount"
    ).iterator(chunk_size=_CHUNK):
        yield ReconciliationDiscrepancy(
            kind=ReconciliationDiscrepancy.Kind.REFUND_LOG_MISMATCH,
            wallet_id=wallet_id,
            ledger_entry_id=entry_id,
            expected=amount,
            detail=f"Refund entry {public_id} has no refund log.",
        )
