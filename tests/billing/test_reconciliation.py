"""Reconciliation: finds drift injected behind the services' back, records it, exits non-zero.

Drift is injected with raw SQL, as a bug or an operator's stray UPDATE
would: the wallet row directly, or the append-only ledger with its trigger
disabled for the test (inside the test's transaction, so it is restored).
"""

from __future__ import annotations

import tracemalloc
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from billing.models import CreditLot, LedgerEntry, OutboxMessage, ReconciliationRun, Wallet
from billing.reconciliation import DRIFT_TOPIC, reconciliation_run
from billing.services import Actor, charge_create, grant_create, hold_create
from tests.factories import default_credit_type, funded_account
from tests.sentry_capture import sentry_events  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def wallet_of(account) -> Wallet:
    return Wallet.objects.get(account=account, credit_type=default_credit_type())


def run_command(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def raw(sql: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def alter(sql: str) -> None:
    """ALTER TABLE inside the test's transaction: first fire the deferred FK checks it would trip on."""
    raw("SET CONSTRAINTS ALL IMMEDIATE")
    raw(sql)
    raw("SET CONSTRAINTS ALL DEFERRED")


def kinds(run: ReconciliationRun) -> set[str]:
    return set(run.discrepancies.values_list("kind", flat=True))


def test_clean_ledger_exits_zero_and_records_a_clean_run():
    account = funded_account("50.00")
    charge_create(account=account, credit_type=default_credit_type(), amount="7.25", actor=Actor.system())
    hold_create(account=account, credit_type=default_credit_type(), amount="3.00", actor=Actor.system())
    code, out = run_command()
    run = ReconciliationRun.objects.get()
    assert code == 0
    assert run.status == "clean" and run.discrepancy_count == 0 and run.wallets_checked == 1
    assert run.finished_at is not None and "clean" in out
    assert not OutboxMessage.objects.exists()


def test_wallet_balance_changed_by_raw_sql_is_drift_and_exits_non_zero():
    account = funded_account("20.00")
    wallet = wallet_of(account)
    raw("UPDATE billing_wallet SET balance = balance + 5 WHERE id = %s", [wallet.pk])
    code, out = run_command()
    run = ReconciliationRun.objects.get()
    assert code == 2
    assert run.status == "drift" and run.discrepancy_count == 1
    discrepancy = run.discrepancies.get()
    assert discrepancy.kind == "balance_mismatch" and discrepancy.wallet_id == wallet.pk
    assert discrepancy.expected == Decimal("20.00") and discrepancy.actual == Decimal("25.00")
    assert "balance_mismatch" in out


def test_ledger_entry_edited_with_the_trigger_disabled_is_drift():
    account = funded_account("20.00")
    entry = LedgerEntry.objects.get(account=account)
    alter("ALTER TABLE billing_ledgerentry DISABLE TRIGGER billing_ledgerentry_append_only")
    raw("UPDATE billing_ledgerentry SET amount = amount - 1 WHERE id = %s", [entry.pk])
    alter("ALTER TABLE billing_ledgerentry ENABLE TRIGGER billing_ledgerentry_append_only")
    code, _ = run_command()
    run = ReconciliationRun.objects.get()
    assert code == 2
    discrepancy = run.discrepancies.get(kind="balance_mismatch")
    assert discrepancy.expected == Decimal("19.00") and discrepancy.actual == Decimal("20.00")
    assert run.discrepancies.get(kind="chain_broken").ledger_entry_id == entry.pk


def test_held_not_matching_pending_holds_is_drift():
    account = funded_account("20.00")
    hold_create(account=account, credit_type=default_credit_type(), amount="4.00", actor=Actor.system())
    raw("UPDATE billing_wallet SET held = 1 WHERE id = %s", [wallet_of(account).pk])
    run = reconciliation_run()
    assert run.status == "drift"
    discrepancy = run.discrepancies.get()
    assert discrepancy.kind == "held_mismatch"
    assert discrepancy.expected == Decimal("4.00") and discrepancy.actual == Decimal("1.00")


def test_negative_balance_is_drift():
    account = funded_account("2.00")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'billing_wallet'::regclass AND contype = 'c'"
        )
        checks = [name for (name,) in cursor.fetchall()]
    for name in checks:  # every CHECK on the wallet, whoever added it; restored when the test rolls back
        alter(f'ALTER TABLE billing_wallet DROP CONSTRAINT "{name}"')
    raw("UPDATE billing_wallet SET balance = -3 WHERE id = %s", [wallet_of(account).pk])
    run = reconciliation_run()
    assert {"negative_balance", "balance_mismatch"} == kinds(run)


def test_charge_refunded_beyond_its_amount_is_drift():
    account = funded_account("20.00")
    charge = charge_create(account=account, credit_type=default_credit_type(), amount="5.00", actor=Actor.system())
    # Both the refund backstop and the append-only trigger are user triggers.
    alter("ALTER TABLE billing_ledgerentry DISABLE TRIGGER USER")
    LedgerEntry.objects.create(
        wallet=charge.wallet,
        account=account,
        credit_type=charge.credit_type,
        kind="refund",
        amount=Decimal("8.00"),
        balance_after=Decimal("23.00"),
        related_entry=charge,
    )
    alter("ALTER TABLE billing_ledgerentry ENABLE TRIGGER USER")
    run = reconciliation_run()
    over = run.discrepancies.get(kind="over_refunded")
    assert over.ledger_entry_id == charge.pk
    assert over.expected == Decimal("5.00") and over.actual == Decimal("8.00")


def test_pending_hold_past_expiry_and_grace_is_drift():
    account = funded_account("20.00")
    hold = hold_create(account=account, credit_type=default_credit_type(), amount="4.00", actor=Actor.system())
    raw("UPDATE billing_hold SET expires_at = now() - interval '2 hours' WHERE id = %s", [hold.pk])
    with override_settings(CREDITLEDGER_RECONCILE_HOLD_GRACE_S=3600):
        run = reconciliation_run()
    stale = run.discrepancies.get()
    assert stale.kind == "stale_hold" and stale.hold_id == hold.pk


def test_pending_hold_just_past_expiry_within_grace_is_not_drift():
    account = funded_account("20.00")
    hold = hold_create(account=account, credit_type=default_credit_type(), amount="4.00", actor=Actor.system())
    raw("UPDATE billing_hold SET expires_at = now() - interval '1 minute' WHERE id = %s", [hold.pk])
    with override_settings(CREDITLEDGER_RECONCILE_HOLD_GRACE_S=3600):
        assert reconciliation_run().status == "clean"


def test_lot_balance_not_matching_the_grant_lots_is_drift():
    account = funded_account("20.00")
    grant_create(
        account=account,
        credit_type=default_credit_type(),
        amount="5.00",
        actor=Actor.system(),
        expires_at=timezone.now() + timedelta(days=30),
    )
    assert reconciliation_run().status == "clean"
    raw("UPDATE billing_wallet SET lot_balance = 2 WHERE id = %s", [wallet_of(account).pk])
    discrepancy = reconciliation_run().discrepancies.get()
    assert discrepancy.kind == "lot_mismatch"
    assert discrepancy.expected == Decimal("5.00") and discrepancy.actual == Decimal("2.00")


def test_grant_lot_past_expiry_with_credits_left_is_drift():
    account = funded_account("20.00")
    grant_create(
        account=account,
        credit_type=default_credit_type(),
        amount="5.00",
        actor=Actor.system(),
        expires_at=timezone.now() + timedelta(days=30),
    )
    lot = CreditLot.objects.get(wallet__account=account)
    raw("UPDATE billing_creditlot SET expires_at = now() - interval '2 hours' WHERE id = %s", [lot.pk])
    with override_settings(CREDITLEDGER_RECONCILE_HOLD_GRACE_S=3600):
        run = reconciliation_run()
    stale = run.discrepancies.get()
    assert stale.kind == "stale_lot" and stale.lot_id == lot.pk and stale.actual == Decimal("5.00")


def test_account_option_checks_only_that_account():
    clean = funded_account("10.00")
    drifted = funded_account("10.00")
    raw("UPDATE billing_wallet SET balance = 11 WHERE id = %s", [wallet_of(drifted).pk])
    assert run_command("--account", clean.public_id)[0] == 0
    assert run_command("--account", drifted.public_id)[0] == 2
    scoped = ReconciliationRun.objects.filter(account=drifted).get()
    assert scoped.wallets_checked == 1 and scoped.discrepancy_count == 1


def test_unknown_account_is_an_error():
    code, _ = run_command("--account", "acc_nope")
    assert code == 1
    assert not ReconciliationRun.objects.exists()


def test_only_the_first_discrepancies_are_stored_but_all_are_counted():
    accounts = [funded_account("10.00") for _ in range(3)]
    raw(
        "UPDATE billing_wallet SET balance = balance + 1 WHERE account_id = ANY(%s)",
        [[a.pk for a in accounts]],
    )
    with override_settings(CREDITLEDGER_RECONCILE_MAX_RECORDED=2):
        run = reconciliation_run()
    assert run.discrepancy_count == 3 and run.truncated
    assert run.discrepancies.count() == 2


def test_drift_writes_an_alert_to_the_outbox_without_exact_balances():
    account = funded_account("20.00")
    raw("UPDATE billing_wallet SET balance = 20.5 WHERE id = %s", [wallet_of(account).pk])
    run = reconciliation_run()
    message = OutboxMessage.objects.get()
    assert message.topic == DRIFT_TOPIC and message == run.alert_message
    assert message.payload["run_id"] == run.pk
    assert message.payload["counts"] == [{"kind": "balance_mismatch", "count": 1}]
    assert "20.5" not in str(message.payload) and "20.00" not in str(message.payload)


def test_reconciliation_never_changes_a_balance():
    account = funded_account("20.00")
    raw("UPDATE billing_wallet SET balance = 25 WHERE id = %s", [wallet_of(account).pk])
    reconciliation_run()
    reconciliation_run()
    assert wallet_of(account).balance == Decimal("25.00")
    assert LedgerEntry.objects.filter(account=account).count() == 1


def test_memory_stays_flat_however_long_the_ledger():
    """The checks aggregate in SQL: Python sees only the rows that disagree, never the whole ledger.

    The copies are made by the database without the ledger key, so each one
    is a `chain_broken` (and a `balance_after_mismatch`): even then Python
    streams them and stores only the first CREDITLEDGER_RECONCILE_MAX_RECORDED.
    """

    def peak_for(extra_entries: int) -> int:
        account = funded_account("1.00")
        entry = LedgerEntry.objects.get(account=account)
        columns = [f.column for f in LedgerEntry._meta.concrete_fields if f.column not in ("id", "public_id")]
        listed = ", ".join(columns)
        # Copies of the one grant, made by the database: the ledger grows without Python holding it.
        raw(
            f"INSERT INTO billing_ledgerentry ({listed}, public_id) "
            f"SELECT {listed}, 'txn_bulk_' || %s || '_' || g FROM billing_ledgerentry, generate_series(1, %s) g "
            "WHERE id = %s",
            [account.pk, extra_entries, entry.pk],
        )
        raw("UPDATE billing_wallet SET balance = balance + %s WHERE account_id = %s", [extra_entries, account.pk])
        tracemalloc.start()
        run = reconciliation_run(account=account)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert run.status == "drift" and run.discrepancy_count == 2 * extra_entries
        return peak

    small, large = peak_for(1_500), peak_for(20_000)  # both past the recorded limit
    assert large < small + 512 * 1024, (small, large)


def test_drift_found_by_the_command_is_reported_to_sentry(sentry_events):  # noqa: F811
    account = funded_account("20.00")
    raw("UPDATE billing_wallet SET balance = %s WHERE id = %s", ["21.234567", wallet_of(account).pk])
    assert run_command()[0] == 2
    event = next(e for e in sentry_events if "Reconciliation found" in (e.get("message") or ""))
    assert event["level"] == "error" and event["tags"]["alert"] == DRIFT_TOPIC
    assert event["contexts"]["alert"]["counts"] == [{"kind": "balance_mismatch", "count": 1}]
    assert "21.23" not in str(event)  # nor in the SQL breadcrumbs: their parameters are not sent
    assert OutboxMessage.objects.get().status == "dispatched"


@pytest.mark.django_db(transaction=True)
def test_a_charge_committed_while_reconcile_runs_is_not_drift(monkeypatch):
    """Every check reads one snapshot: a charge landing between two of them cannot look like tampering."""
    import threading

    from billing import statements

    account = funded_account("10.00")
    build = statements.reconcile_chain_build

    def build_then_charge_elsewhere(**kwargs):
        build(**kwargs)
        # Another request charges the wallet (its own connection, committed) after the chain pass
        # and before the checks that read the wallet rows.
        worker = threading.Thread(
            target=lambda: (
                charge_create(account=account, credit_type=default_credit_type(), amount="1", actor=Actor.system()),
                connection.close(),
            )
        )
        worker.start()
        worker.join()

    monkeypatch.setattr(statements, "reconcile_chain_build", build_then_charge_elsewhere)
    run = reconciliation_run()
    assert run.status == "clean", kinds(run)
    assert LedgerEntry.objects.filter(wallet__account=account, kind="charge").count() == 1
