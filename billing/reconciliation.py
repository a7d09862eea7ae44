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
  with credits left (the grant expiry task is not running or is failing);
* `chain_broken`: an entry whose hash does not verify over its fields and
  its predecessor's hash (an entry edited, inserted or deleted without the
  ledger key; billing/chain.py), or signed with a key id not configured;
* `balance_after_mismatch`: an entry's `balance_after` is not the previous
  entry's plus its amount;
* `chain_head_mismatch`: the wallet's `chain_head` is not its newest entry's
  hash (entries appended or removed behind the core's back);
* `checkpoint_regressed`: a wallet's chain is shorter than, or differs at the
  position recorded by, the newest stored checkpoint of a clean run or a
  checkpoint supplied to the run (billing/checkpoints.py);
* and whatever the apps above billing register (`reconcile_check_register`):
  refunds checks its refund log against the refund entries, subscriptions
  its allowance grants against their grant entries.

The chain checks share one pass over the ledger with window functions
(statements.reconcile_chain_build), which keeps only the rows that disagree
and each wallet's newest entry. A full run (no account) then stores a signed
checkpoint of every wallet's head and entry count.

A run is stored with its discrepancies (the first
CREDITLEDGER_RECONCILE_MAX_RECORDED row by row; the count is always exact)
and, on drift, an `alert.reconciliation_drift` outbox message is written in
the same transaction. Nothing is ever "fixed" here: a correction is an
`adjustment` entry made by staff with a reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from billing import chain, checkpoints, statements
from billing.models import LedgerEntry, ReconciliationDiscrepancy, ReconciliationRun, Wallet
from billing.outbox import outbox_enqueue
from events.services import event_record

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
            # The newest entry: where the stored balance and the ledger part (rare; one small look-up each).
            ledger_entry_id=statements.reconcile_chain_newest(wallet_id=wallet_id),
            expected=total,
            actual=actual,
            detail="Stored balance differs from the sum of the wallet's ledger entries (entry: the newest).",
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


def _chain_breaks(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    for wallet_id, entry_id, public_id, key_id, key_known in statements.reconcile_chain_breaks():
        yield ReconciliationDiscrepancy(
            kind=Kind.CHAIN_BROKEN,
            wallet_id=wallet_id,
            ledger_entry_id=entry_id,
            detail=(
                f"Entry {public_id}'s hash does not verify over its fields and the previous entry's hash."
                if key_known
                else f"Entry {public_id} is signed with key id {key_id!r}, which is not configured."
            ),
        )


def _balance_after_breaks(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    for wallet_id, entry_id, balance_after, expected in statements.reconcile_balance_after_breaks():
        yield ReconciliationDiscrepancy(
            kind=Kind.BALANCE_AFTER_MISMATCH,
            wallet_id=wallet_id,
            ledger_entry_id=entry_id,
            expected=expected,
            actual=balance_after,
            detail="The entry's balance_after is not the previous entry's balance_after plus its amount.",
        )


def _chain_head_mismatches(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    rows = statements.reconcile_chain_head_mismatches(account_id=_account_id(account))
    for wallet_id, head, entry_id, newest in rows:
        yield ReconciliationDiscrepancy(
            kind=Kind.CHAIN_HEAD_MISMATCH,
            wallet_id=wallet_id,
            ledger_entry_id=entry_id,
            detail=f"The wallet's chain head {head[:16] or '(none)'}… is not its newest entry's hash "
            f"{newest[:16] or '(no entries)'}….",
        )


def _checkpoint_regressions(account: Account | None) -> Iterator[ReconciliationDiscrepancy]:
    rows = statements.reconcile_checkpoint_regressions(account_id=_account_id(account))
    for source, wallet_id, recorded, current, entry_id in rows:
        yield ReconciliationDiscrepancy(
            kind=Kind.CHECKPOINT_REGRESSED,
            wallet_id=wallet_id,
            ledger_entry_id=entry_id,
            detail=(
                f"{source}: the wallet had {recorded} entries; it now has {current}."
                if entry_id is None
                else f"{source}: entry number {recorded} of the wallet's chain is not the one checkpointed."
            ),
        )


CHECKS = (
    _balance_mismatches,
    _held_mismatches,
    _negative_balances,
    _over_refunds,
    _stale_holds,
    _lot_mismatches,
    _stale_lots,
    _chain_breaks,
    _balance_after_breaks,
    _chain_head_mismatches,
    _checkpoint_regressions,
)

# Checks registered by the apps above billing (refunds, subscriptions), which
# billing may not import: each takes the account (or None) and yields discrepancies.
_registered_checks: list[Callable[[Account | None], Iterable[ReconciliationDiscrepancy]]] = []


def reconcile_check_register(check: Callable[[Account | None], Iterable[ReconciliationDiscrepancy]]) -> None:
    """Add `check` to every reconciliation run (call from AppConfig.ready(); registering twice is a no-op)."""
    if check not in _registered_checks:
        _registered_checks.append(check)


def _checkpoint_heads(
    account: Account | None, supplied: list[tuple[int, int, str]] | None
) -> Iterator[tuple[str, int, int, str]]:
    """(source, wallet id, count, head) of the checkpoints this run compares with; raises CheckpointInvalid."""
    stored = checkpoints.checkpoint_stored_latest()
    if stored is not None:
        source = f"stored checkpoint {stored.pk}"
        for wallet_id, count, head in checkpoints.checkpoint_stored_heads(stored):
            yield source, wallet_id, count, head
    for wallet_id, count, head in supplied or ():
        yield "supplied checkpoint", wallet_id, count, head


def _chain_pass(
    account: Account | None, supplied: list[tuple[int, int, str]] | None
) -> list[ReconciliationDiscrepancy]:
    """Load the checkpoints and make the chain pass; a discrepancy for a stored checkpoint that does not verify."""
    problems: list[ReconciliationDiscrepancy] = []
    try:
        statements.reconcile_checkpoint_heads_load(_checkpoint_heads(account, supplied))
    except checkpoints.CheckpointInvalid as exc:
        problems.append(
            ReconciliationDiscrepancy(kind=Kind.CHECKPOINT_REGRESSED, detail=f"Stored checkpoint rejected: {exc}")
        )
        statements.reconcile_checkpoint_heads_load(("supplied checkpoint", *row) for row in supplied or ())
    key_ids, inner, outer = chain.verifying_keys()
    statements.reconcile_chain_build(account_id=_account_id(account), key_ids=key_ids, inner=inner, outer=outer)
    return problems


def reconciliation_run(
    *, account: Account | None = None, trigger: str = "", checkpoint: list[tuple[int, int, str]] | None = None
) -> ReconciliationRun:
    """Check every wallet (or one account's) and store what disagrees.

    `checkpoint`: the heads of a verified checkpoint document
    (`checkpoints.checkpoint_parse`) to compare the chains with, besides the
    newest stored one. The run row is committed first, so a run that
    crashes stays visible as `running`/`failed`. Returns the finished run;
    `status` is `clean` or `drift`. Raises on a database error after marking
    the run `failed`.
    """
    run = ReconciliationRun.objects.create(account=account, trigger=trigger[:32])
    limit = settings.CREDITLEDGER_RECONCILE_MAX_RECORDED
    counts: Counter[str] = Counter()
    run.alert_message = None  # the drift alert's OutboxMessage, when there is one
    outermost = not connection.in_atomic_block
    try:
        with transaction.atomic():
            if outermost:  # inside a caller's transaction (tests) the snapshot is the caller's to choose
                statements.transaction_snapshot_fix()
            wallets = Wallet.objects.all() if account is None else Wallet.objects.filter(account=account)
            run.wallets_checked = wallets.count()
            batch: list[ReconciliationDiscrepancy] = []
            recorded = 0
            early = _chain_pass(account, checkpoint)
            for check in (lambda _account: early, *CHECKS, *_registered_checks):
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
            if account is None:
                checkpoints.checkpoint_record(run=run)
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
                event_record(
                    type="reconciliation.drift",
                    account=account,
                    data={
                        "object": "reconciliation_run",
                        "id": run.pk,
                        "status": str(run.status),
                        "account": account.public_id if account else None,
                        "discrepancy_count": total,
                        "counts": [{"kind": kind, "count": n} for kind, n in sorted(counts.items())],
                        "wallets_checked": run.wallets_checked,
                        "finished_at": run.finished_at.isoformat().replace("+00:00", "Z"),
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
