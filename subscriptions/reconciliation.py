"""Reconciliation of allowance grants against the ledger (registered into billing's `reconcile`).

An `AllowanceGrant` records that a period's allowance was granted; its entry
is the money. Each record with an amount must point at a grant entry of
that amount on the subscription's account; a record without an amount must
point at nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F, Q

from accounts.models import Account
from billing.models import LedgerEntry, ReconciliationDiscrepancy
from subscriptions.models import AllowanceGrant


def allowance_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    """An allowance grant whose entry is missing, or is not a grant of its amount on its account."""
    grants = AllowanceGrant.objects.filter(
        Q(amount__gt=0, entry__isnull=True)
        | Q(amount=0, entry__isnull=False)
        | (
            Q(entry__isnull=False)
            & (
                ~Q(entry__kind=LedgerEntry.Kind.GRANT)
                | ~Q(entry__amount=F("amount"))
                | ~Q(entry__account_id=F("subscription__account_id"))
            )
        )
    )
    if account is not None:
        grants = grants.filter(subscription__account=account)
    rows = grants.values_list("pk", "entry_id", "entry__wallet_id", "amount", "entry__amount")
    for grant_id, entry_id, wallet_id, recorded, booked in rows.iterator(chunk_size=2000):
        yield ReconciliationDiscrepancy(
            kind=ReconciliationDiscrepancy.Kind.ALLOWANCE_MISMATCH,
            wallet_id=wallet_id,
            ledger_entry_id=entry_id,
            expected=booked,
            actual=recorded,
            detail=(
                f"Allowance grant {grant_id} disagrees with its ledger entry "
                "(missing, not a grant, another amount or another account; expected=entry, actual=record)."
            ),
        )
