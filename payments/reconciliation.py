"""Payments' part of `manage.py reconcile`, registered with billing (which may not import this app).

Drift between money in and credits in:

* `purchase_without_grant`: a purchase marked paid (or refunded or disputed
  after being paid) with no grant entry;
* `grant_without_purchase`: a purchased lot whose grant no purchase points
  at, or whose purchase was never paid.
"""

from __future__ import annotations

from collections.abc import Iterator

from accounts.models import Account
from billing.models import CreditLot, ReconciliationDiscrepancy
from payments.models import Purchase

PURCHASE_WITHOUT_GRANT = "purchase_without_grant"
GRANT_WITHOUT_PURCHASE = "grant_without_purchase"


def purchases_drift(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    purchases = Purchase.objects.filter(
        status__in=[Purchase.Status.PAID, Purchase.Status.REFUNDED, Purchase.Status.DISPUTED],
        grant_entry__isnull=True,
    )
    lots = CreditLot.objects.filter(source=CreditLot.Source.PURCHASED).exclude(
        entry__purchase__status__in=[Purchase.Status.PAID, Purchase.Status.REFUNDED, Purchase.Status.DISPUTED]
    )
    if account is not None:
        purchases, lots = purchases.filter(account=account), lots.filter(account=account)
    for purchase in purchases.select_related("credit_type").iterator(chunk_size=500):
        yield ReconciliationDiscrepancy(
            kind=PURCHASE_WITHOUT_GRANT,
            expected=purchase.credits,
            detail=f"Purchase {purchase.public_id} is {purchase.status} but granted no credits.",
        )
    for lot in lots.select_related("entry").iterator(chunk_size=500):
        yield ReconciliationDiscrepancy(
            kind=GRANT_WITHOUT_PURCHASE,
            wallet_id=lot.wallet_id,
            ledger_entry_id=lot.entry_id,
            lot_id=lot.pk,
            actual=lot.amount,
            detail=f"Purchased credits (entry {lot.entry.public_id}) without a paid purchase.",
        )
