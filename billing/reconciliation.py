"""Reconciliation: prove the stored balances against the ledger, and report.

Each check is one SQL statement with a GROUP BY (or a plain filter) that
returns only the rows that disagree, read through a server-side cursor in
chunks. So memory stays flat however large the ledger grows, and each check
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
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from billing.models import CreditLot, Hold, LedgerEntry, ReconciliationDiscrepancy, ReconciliationRun, Wallet
from billing.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

DRIFT_TOPIC = "alert.reconciliation_drift"
_CHUNK = 2000

Kind = ReconciliationDiscrepancy.Kind


def _stream(sql: str, params: list) -> Iterator[tuple]:
    """Rows of `sql`, fetched in chunks through a server-side cursor.

    PostgreSQL never runs a cursor's query in parallel, and these GROUP BYs
    over the whole ledger are exactly what parallel workers speed up (about
    3x at a million rows on two cores; `python -m bench`). So the statement
    first fills a temporary table (CREATE TABLE AS may run in parallel, and
    holds only the disagreeing rows, usually none), which the cursor then
    reads: still one statement's snapshot, still flat memory.
    """
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS reconcile_rows")
            cursor.execute(f"CREATE TEMPORARY TABLE reconcile_rows ON COMMIT DROP AS {sql}", params)
        sql, params = "SELECT * FROM reconcile_rows", []
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(_CHUNK):
            yield from rows


def _scope(column: str, account: Account | None) -> tuple[str, list]:
    if account is None:
        return "", []
    return f" AND {column} = %s", [account.pk]


def _wallet_sum_mismatches(
    *,
    column: str,
    child_table: str,
    child_sum: str,
    child_filter: str,
    child_params: list,
    account: Account | None,
    kind: str,
    detail: str,
) -> Iterator[ReconciliationDiscrepancy]:
    """Wallets whose stored `column` differs from SUM(`child_sum`) of their rows in `child_table`.

    One GROUP BY over the child table, joined to the wallets: only the
    disagreeing wallets come back.
    """
    wallet = Wallet._meta.db_table
    outer, outer_params = _scope("w.account_id", account)
    sql = (
        f"SELECT w.id, w.{column}, COALESCE(c.total, 0) FROM {wallet} w "  # noqa: S608 - names are ours
        f"LEFT JOIN (SELECT wallet_id, SUM({child_sum}) AS total FROM {child_table} "
        f"WHERE 1=1{child_filter} GROUP BY wallet_id) c "
        f"ON c.wallet_id = w.id WHERE w.{column} <> COALESCE(c.total, 0){outer}"
    )
    for wallet_id, actual, total in _stream(sql, [*child_params, *outer_params]):
        yield ReconciliationDiscrepancy(kind=kind, wallet_id=wallet_id, expected=total, actual=actual, detail=detail)


def _balance_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    scope, params = _scope("account_id", account)
    return _wallet_sum_mismatches(
        column="balance",
        child_table=LedgerEntry._meta.db_table,
        child_sum="amount",
        child_filter=scope,
        child_params=params,
        account=account,
        kind=Kind.BALANCE_MISMATCH,
        detail="Stored balance differs from the sum of the wallet's ledger entries.",
    )


def _held_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    scope, params = _scope("account_id", account)
    return _wallet_sum_mismatches(
        column="held",
        child_table=Hold._meta.db_table,
        child_sum="amount",
        child_filter=f" AND status = %s{scope}",
        child_params=[Hold.Status.PENDING.value, *params],
        account=account,
        kind=Kind.HELD_MISMATCH,
        detail="Held amount differs from the sum of the wallet's pending holds.",
    )


def _negative_balances(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    wallet = Wallet._meta.db_table
    scope, params = _scope("account_id", account)
    sql = (
        f"SELECT id, balance, held FROM {wallet} "  # noqa: S608 - table name is ours
        f"WHERE (balance < 0 OR held < 0 OR held > balance OR lot_balance < 0 OR lot_balance > balance){scope}"
    )
    for wallet_id, balance, held in _stream(sql, params):
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
    ledger = LedgerEntry._meta.db_table
    scope, params = _scope("r.account_id", account)
    sql = (
        f"SELECT c.id, c.wallet_id, c.kind, c.amount, SUM(r.amount) FROM {ledger} r "  # noqa: S608 - ours
        f"JOIN {ledger} c ON c.id = r.related_entry_id "
        f"WHERE r.kind = %s{scope} "
        "GROUP BY c.id, c.wallet_id, c.kind, c.amount "
        "HAVING c.kind <> %s OR SUM(r.amount) > -c.amount"
    )
    params = [LedgerEntry.Kind.REFUND.value, *params, LedgerEntry.Kind.CHARGE.value]
    for entry_id, wallet_id, kind, amount, refunded in _stream(sql, params):
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
    hold = Hold._meta.db_table
    scope, params = _scope("account_id", account)
    cutoff = timezone.now() - timedelta(seconds=settings.CREDITLEDGER_RECONCILE_HOLD_GRACE_S)
    # The partial index hold_pending_expiry serves exactly this filter.
    sql = (
        f"SELECT id, wallet_id, amount, expires_at FROM {hold} "  # noqa: S608 - table name is ours
        f"WHERE status = %s AND expires_at < %s{scope}"
    )
    for hold_id, wallet_id, amount, expires_at in _stream(sql, [Hold.Status.PENDING.value, cutoff, *params]):
        yield ReconciliationDiscrepancy(
            kind=Kind.STALE_HOLD,
            wallet_id=wallet_id,
            hold_id=hold_id,
            actual=amount,
            detail=f"Hold still pending; it expired at {expires_at.isoformat()}.",
        )


def _lot_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    wallet = Wallet._meta.db_table
    in_account = f" AND wallet_id IN (SELECT id FROM {wallet} WHERE account_id = %s)"  # noqa: S608 - name is ours
    return _wallet_sum_mismatches(
        column="lot_balance",
        child_table=CreditLot._meta.db_table,
        child_sum="remaining",
        child_filter=in_account if account is not None else "",
        child_params=[account.pk] if account is not None else [],
        account=account,
        kind=Kind.LOT_MISMATCH,
        detail="Lot balance differs from the sum of the wallet's grant lots.",
    )


def _stale_lots(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    wallet, lot = Wallet._meta.db_table, CreditLot._meta.db_table
    cutoff = timezone.now() - timedelta(seconds=settings.CREDITLEDGER_RECONCILE_HOLD_GRACE_S)
    scope = f" AND wallet_id IN (SELECT id FROM {wallet} WHERE account_id = %s)" if account is not None else ""  # noqa: S608
    # The partial index lot_expiry_due serves exactly this filter.
    sql = (
        f"SELECT id, wallet_id, remaining, expires_at FROM {lot} "  # noqa: S608 - table name is ours
        f"WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at < %s{scope}"
    )
    params = [cutoff] + ([account.pk] if account is not None else [])
    for lot_id, wallet_id, remaining, expires_at in _stream(sql, params):
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
            for check in CHECKS:
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
