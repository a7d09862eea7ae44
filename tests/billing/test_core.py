"""The posting protocol (billing/core.py): one wallet locked, decided from the locked row, entry and balance as one."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from billing.core import BALANCE_CEILING, Actor, posting, postings_for_debit
from billing.exceptions import AmountTooLarge, InsufficientCredits
from billing.models import LedgerEntry, Wallet
from tests.factories import AccountFactory, default_credit_type, funded_account

ACTOR = Actor.system()


def balance_of(account) -> Decimal:
    return Wallet.objects.get(account=account).balance


@pytest.mark.django_db
def test_post_moves_the_balance_and_writes_the_entry_with_it():
    account = funded_account("10.00")
    with posting(account=account, credit_type=default_credit_type()) as p:
        entry = p.post(kind="charge", amount=Decimal("-2.50"), actor=ACTOR, task_id="t-1")
    assert balance_of(account) == Decimal("7.50")
    stored = LedgerEntry.objects.get(pk=entry.pk)
    assert (stored.amount, stored.balance_after, stored.task_id) == (Decimal("-2.50"), Decimal("7.50"), "t-1")


@pytest.mark.django_db
def test_an_exception_inside_the_posting_rolls_back_everything_it_wrote():
    account = funded_account("10.00")
    entries = LedgerEntry.objects.count()
    with pytest.raises(RuntimeError), posting(account=account, credit_type=default_credit_type()) as p:
        p.post(kind="charge", amount=Decimal("-2.50"), actor=ACTOR)
        raise RuntimeError("the decision changed its mind")
    assert balance_of(account) == Decimal("10.00")
    assert LedgerEntry.objects.count() == entries


@pytest.mark.django_db
def test_an_account_without_a_wallet_has_nothing_available():
    account = AccountFactory()
    with posting(account=account, credit_type=default_credit_type(), debit=True) as p:
        assert p.wallet is None and p.available == Decimal(0)
        with pytest.raises(InsufficientCredits):
            p.require_available(Decimal("0.01"))
    assert not Wallet.objects.filter(account=account).exists()


@pytest.mark.django_db
def test_create_makes_the_missing_wallet_first():
    account = AccountFactory()
    with posting(account=account, credit_type=default_credit_type(), create=True) as p:
        p.post(kind="grant", amount=Decimal("3.00"), actor=ACTOR)
    assert balance_of(account) == Decimal("3.00")


@pytest.mark.django_db
def test_require_available_decides_from_the_locked_row_not_the_callers_copy():
    account = funded_account("5.00")
    Wallet.objects.filter(account=account).update(held=Decimal("4.00"))  # e.g. a hold made since the caller looked
    with posting(account=account, credit_type=default_credit_type()) as p:
        with pytest.raises(InsufficientCredits):
            p.require_available(Decimal("2.00"))
        p.require_available(Decimal("1.00"))


@pytest.mark.django_db
def test_a_balance_may_not_reach_the_ceiling():
    account = funded_account("10.00")
    with pytest.raises(AmountTooLarge), posting(account=account, credit_type=default_credit_type()) as p:
        p.post(kind="grant", amount=BALANCE_CEILING - Decimal("10.00"), actor=ACTOR)
    assert balance_of(account) == Decimal("10.00")


@pytest.mark.django_db(transaction=True)
def test_after_commit_work_runs_only_when_the_posting_commits():
    account = funded_account("10.00")
    ran: list[str] = []
    with posting(account=account, credit_type=default_credit_type()) as p:
        p.after_commit(lambda: ran.append("committed"))
        assert ran == []
    assert ran == ["committed"]
    with pytest.raises(RuntimeError), posting(account=account, credit_type=default_credit_type()) as p:
        p.after_commit(lambda: ran.append("rolled back"))
        raise RuntimeError
    assert ran == ["committed"]


@pytest.mark.django_db(transaction=True)
def test_a_second_posting_on_the_same_wallet_waits_for_the_first_to_commit():
    account = funded_account("10.00")
    credit_type = default_credit_type()
    first_locked, seen = threading.Event(), {}

    def second() -> None:
        try:
            first_locked.wait(10)
            with posting(account=account, credit_type=credit_type) as p:
                seen["balance"] = p.wallet.balance
        finally:
            connection.close()

    def someone_waits_for_a_lock() -> bool:
        """Asked on a connection of its own (another thread): this one is inside the first posting."""
        waiting: list[int] = []

        def look() -> None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                    waiting.append(cursor.fetchone()[0])
            finally:
                connection.close()

        observer = threading.Thread(target=look)
        observer.start()
        observer.join(10)
        return bool(waiting and waiting[0])

    thread = threading.Thread(target=second)
    thread.start()
    with transaction.atomic(), posting(account=account, credit_type=credit_type) as p:
        p.post(kind="charge", amount=Decimal("-4.00"), actor=ACTOR)
        first_locked.set()
        deadline = time.monotonic() + 10
        while not someone_waits_for_a_lock() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert someone_waits_for_a_lock(), "the second posting never waited for the wallet lock"
    thread.join(10)
    assert seen["balance"] == Decimal("6.00")  # it read the row only after the first committed


@pytest.mark.django_db
def test_a_posting_inside_a_posting_is_refused_so_no_operation_locks_two_wallets():
    alice, bob = funded_account("1.00"), funded_account("1.00")
    credit_type = default_credit_type()
    with pytest.raises(RuntimeError, match="already open"), posting(account=alice, credit_type=credit_type):
        with posting(account=bob, credit_type=credit_type):
            pass  # pragma: no cover - never reached
    with posting(account=bob, credit_type=credit_type) as p:  # and the guard is released afterwards
        assert p.wallet is not None


def _locked_elsewhere(wallet: Wallet) -> bool:
    """Whether another connection (a thread's) finds the wallet row locked; NOWAIT, so it does not wait to find out."""
    from django.db import OperationalError

    found: list[bool] = []

    def probe() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM billing_wallet WHERE id = %s FOR NO KEY UPDATE NOWAIT", [wallet.pk])
            found.append(False)
        except OperationalError:
            found.append(True)
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(10)
    return found[0]


@pytest.mark.django_db(transaction=True)
def test_postings_for_debit_locks_every_wallet_of_a_batch_at_once():
    credit_type = default_credit_type()
    alice, bob, carol = funded_account("5.00"), funded_account("5.00"), AccountFactory()
    wallets = {a.pk: Wallet.objects.get(account=a) for a in (alice, bob)}
    with postings_for_debit(wallets=[(bob, credit_type), (alice, credit_type), (carol, credit_type)]) as opened:
        assert all(_locked_elsewhere(w) for w in wallets.values())
        assert opened[(carol.pk, credit_type.pk)].wallet is None  # no wallet: nothing available
        opened[(bob.pk, credit_type.pk)].post(kind="charge", amount=Decimal("-2.00"), actor=ACTOR)
        with pytest.raises(RuntimeError, match="already open"), posting(account=alice, credit_type=credit_type):
            pass  # pragma: no cover - never reached
    assert not any(_locked_elsewhere(w) for w in wallets.values())
    assert (balance_of(alice), balance_of(bob)) == (Decimal("5.00"), Decimal("3.00"))


@pytest.mark.django_db
def test_inside_a_batch_only_charges_are_posted_holds_and_lots_are_refused():
    credit_type = default_credit_type()
    account = funded_account("5.00")
    with pytest.raises(RuntimeError, match="hold_reserve is not available inside a batch"):
        with postings_for_debit(wallets=[(account, credit_type)]) as opened:
            opened[(account.pk, credit_type.pk)].hold_reserve(object())
    assert balance_of(account) == Decimal("5.00")


@pytest.mark.django_db
def test_an_observer_refusing_inside_a_batch_rolls_the_whole_batch_back(monkeypatch):
    from billing import core
    from billing.exceptions import InsufficientCredits

    def refuse(p, before, after):
        raise InsufficientCredits(available=after, required=Decimal(1), scale=2)

    credit_type = default_credit_type()
    account = funded_account("5.00")
    entries = LedgerEntry.objects.count()
    monkeypatch.setattr(core, "_balance_observers", [refuse])
    with pytest.raises(RuntimeError, match="refused a change inside a batch"):
        with postings_for_debit(wallets=[(account, credit_type)]) as opened:
            opened[(account.pk, credit_type.pk)].post(kind="charge", amount=Decimal("-1.00"), actor=ACTOR)
    assert balance_of(account) == Decimal("5.00") and LedgerEntry.objects.count() == entries


LOCKING_STATEMENTS = {"wallet_lock", "wallet_lock_for_debit", "wallets_lock_for_debit", "daily_usage_add"}


def test_only_the_core_runs_the_wallet_locking_and_usage_statements():
    """Anything else that locked a wallet or counted usage would bypass the posting protocol."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for app in ("config", "accounts", "pricing", "billing", "refunds", "subscriptions"):
        for path in (root / app).rglob("*.py"):
            if path.relative_to(root).as_posix() in {"billing/core.py", "billing/statements.py"}:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                named = (isinstance(node, ast.Attribute) and node.attr in LOCKING_STATEMENTS) or (
                    isinstance(node, ast.ImportFrom) and any(a.name in LOCKING_STATEMENTS for a in node.names)
                )
                if named:
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
