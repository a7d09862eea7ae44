"""Reconciliation: prove the stored balances against the ledger, and report.

Each check is one SQL statement with a GROUP BY (or a plain filter) that
returns only the rows that disagree (billing/statements.py), read through a
server-side cursor in chunks. So memory stays flat however large the ledger grows, and each check
sees one consistent snapshot of the tables it joins (a statement's snapshot),
even while charges keep landing.

What is checked, per wallet (or per wallet of one account):

* `balance_mismatch`: the stored balance differs from the sum of its entries;
* `held_mismatch`: `held` differs from the sum of its pending holds;
* `negative_balance`: balance, held or lot balance below zero, or held or
  lot balance above the balance (the CHECK constraints forbid it; this
  catches a constraint dropped or bypassed);
* `over_refunded`: refunds pointing at an entry add up to more than the
  charge they refund, or point at something that is not a charge;
* `stale_hold`: a hold still pending longer than the grace period after its
  expiry (the expiry task is not running or is failing).
* `lot_mismatch`: `lot_balance` (the part of the balance in grant lots)
  differs from the sum of the wallet's lots' `remaining`;
* `stale_lot`: a grant lot past its expiry (by more than the same grace)
  with credits left (the grant expiry task is not running or is failing).

A run is stored with its discrepancies (the first
CREDITLEDGER_RECONCILE_MAX_RECORDED row by row; the count is always exact)
and, on drift, an `alert.reconciliation_drift` outbox message is written in
the same transaction. Nothing is ever "fixed" here: a correction is an
`adjustment` entry made by staff with a reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from billing import statements
from billing.models import LedgerEntry, ReconciliationDiscrepancy, ReconciliationRun, Wallet
from billing.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

DRIFT_TOPIC = "alert.reconciliation_drift"
Kind = ReconciliationDiscrepancy.Kind


def _account_id(account: Account | None) -> int | None:
    return account.pk if account is not None else None


def _grace_cutoff() -> datetime:
    return timezone.now() - timedelta(seconds=settings.CREDITLEDGER_RECONCILE_HOLD_GRACE_S)


def _balance_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    for wallet_id, actual, total in statements.reconcile_balance_mismatches(account_id=_account_id(account)):
        yield ReconciliationDiscrepancy(
            kind=Kind.BALANCE_MISMATCH,
            wallet_id=wallet_id,
            expected=total,
            actual=actual,
            detail="Stored balance differs from the sum of the wallet's ledger entries.",
        )


def _held_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    for wallet_id, actual, total in statements.reconcile_held_mismatches(account_id=_account_id(account)):
        yield ReconciliationDiscrepancy(
            kind=Kind.HELD_MISMATCH,
            wallet_id=wallet_id,
            expected=total,
            actual=actual,
            detail="Held amount differs from the sum of the wallet's pending holds.",
        )


def _negative_balances(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    for wallet_id, balance, held in statements.reconcile_wallets_out_of_bounds(account_id=_account_id(account)):
        yield ReconciliationDiscrepancy(
            kind=Kind.NEGATIVE_BALANCE,
            wallet_id=wallet_id,
            expected=held,
            actual=balance,
            detail=(
                "Balance, held or lot balance is negative, or held or lot balance exceeds the balance "
                "(expected=held, actual=balance)."
            ),
        )


def _over_refunds(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    for entry_id, wallet_id, kind, amount, refunded in statements.reconcile_over_refunds(
        account_id=_account_id(account)
    ):
        is_charge = kind == LedgerEntry.Kind.CHARGE
        yield ReconciliationDiscrepancy(
            kind=Kind.OVER_REFUNDED,
            wallet_id=wallet_id,
            ledger_entry_id=entry_id,
            expected=-amount if is_charge else None,
            actual=refunded,
            detail=(
                "Refunds exceed the charge they refund."
                if is_charge
                else f"Refunds point at a {kind} entry, not a charge."
            ),
        )


def _stale_holds(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    rows = statements.reconcile_stale_holds(account_id=_account_id(account), expired_before=_grace_cutoff())
    for hold_id, wallet_id, amount, expires_at in rows:
        yield ReconciliationDiscrepancy(
            kind=Kind.STALE_HOLD,
            wallet_id=wallet_id,
            hold_id=hold_id,
            actual=amount,
            detail=f"Hold still pending; it expired at {expires_at.isoformat()}.",
        )


def _lot_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    for wallet_id, actual, total in statements.reconcile_lot_mismatches(account_id=_account_id(account)):
        yield ReconciliationDiscrepancy(
            kind=Kind.LOT_MISMATCH,
            wallet_id=wallet_id,
            expected=total,
            actual=actual,
            detail="Lot balance differs from the sum of the wallet's grant lots.",
        )


def _stale_lots(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    rows = statements.reconcile_stale_lots(account_id=_account_id(account), expired_before=_grace_cutoff())
    for lot_id, wallet_id, remaining, expires_at in rows:
        yield ReconciliationDiscrepancy(
            kind=Kind.STALE_LOT,
            wallet_id=wallet_id,
            lot_id=lot_id,
            actual=remaining,
            detail=f"Grant lot still holds credits; it expired at {expires_at.isoformat()}.",
        )


CHECKS = (
    _balance_mismatches,
    _held_mismatches,
    _negative_balances,
    _over_refunds,
    _stale_holds,
    _lot_mismatches,
    _stale_lots,
)

# Checks registered by upper apps (payments: paid purchases without a grant,
# purchased grants without a paid purchase), which billing may not import.
# Each is `fn(account: Account | None) -> Iterator[ReconciliationDiscrepancy]`;
# its `kind` may be a string of its own, outside `Kind`.
_registered_checks: list = []


def reconciliation_check_register(fn) -> None:
    """Run `fn(account)` with the built-in checks on every reconciliation run."""
    if fn not in _registered_checks:
        _registered_checks.append(fn)


def reconciliation_run(*, account: Account | None = None, trigger: str = "") -> ReconciliationRun:
    """Check every wallet (or one account's) and store what disagrees.

    The run row is committed first, so a run that crashes stays visible as
    `running`/`failed`. Returns the finished run; `status` is `clean` or
    `drift`. Raises on a database error after marking the run `failed`.
    """
    run = ReconciliationRun.objects.create(account=account, trigger=trigger[:32])
    limit = settings.CREDITLEDGER_RECONCILE_MAX_RECORDED
    counts: Counter[str] = Counter()
    run.alert_message = None  # the drift alert's OutboxMessage, when there is one
    try:
        with transaction.atomic():
            wallets = Wallet.objects.all() if account is None else Wallet.objects.filter(account=account)
            run.wallets_checked = wallets.count()
            batch: list[ReconciliationDiscrepancy] = []
            recorded = 0
            for check in (*CHECKS, *_registered_checks):
                for discrepancy in check(account):
                    counts[str(discrepancy.kind)] += 1
                    if recorded >= limit:
                        continue
                    discrepancy.run = run
                    batch.append(discrepancy)
                    recorded += 1
                    if len(batch) >= 500:
                        ReconciliationDiscrepancy.objects.bulk_create(batch)
                        batch.clear()
            ReconciliationDiscrepancy.objects.bulk_create(batch)
            total = sum(counts.values())
            run.discrepancy_count = total
            run.truncated = total > recorded
            run.status = ReconciliationRun.Status.DRIFT if total else ReconciliationRun.Status.CLEAN
            run.finished_at = timezone.now()
            run.save(update_fields=["wallets_checked", "discrepancy_count", "truncated", "status", "finished_at"])
            if total:
                # Counts and ids only: exact balances stay in the database and the admin.
                run.alert_message = outbox_enqueue(
                    topic=DRIFT_TOPIC,
                    payload={
                        "message": f"Reconciliation found {total} discrepancies (run {run.pk}).",
                        "level": "error",
                        "run_id": run.pk,
                        "account": account.public_id if account else None,
                        # A list, not {kind: n}: kind names such as "balance_mismatch"
                        # are keys Sentry's scrubber would redact.
                        "counts": [{"kind": kind, "count": n} for kind, n in sorted(counts.items())],
                        "wallets_checked": run.wallets_checked,
                    },
                )
    except Exception as exc:
        ReconciliationRun.objects.filter(pk=run.pk).update(
            status=ReconciliationRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:5000],
            finished_at=timezone.now(),
        )
        raise
    if total:
        logger.error("reconciliation run %s found drift: %s", run.pk, dict(counts))
    else:
        logger.info("reconciliation run %s clean (%s wallets)", run.pk, run.wallets_checked)
    return run
