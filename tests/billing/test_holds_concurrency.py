"""Holds under races, on real PostgreSQL: exactly one outcome per hold."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from billing.exceptions import HoldNotPending
from billing.models import Hold, LedgerEntry, Wallet
from billing.services import Actor, hold_capture, hold_expire, hold_release, holds_expire_due
from tests.concurrency import run_concurrently
from tests.factories import default_credit_type, funded_account, hold_for

ROUNDS = 10


def wallet_consistent(account) -> Wallet:
    """The wallet, after checking that held is the sum of pending holds and the ledger proves the balance."""
    wallet = Wallet.objects.get(account=account, credit_type=default_credit_type())
    pending = Hold.objects.filter(wallet=wallet, status="pending").aggregate(s=Sum("amount"))["s"] or Decimal(0)
    assert wallet.held == pending
    assert LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"] == wallet.balance
    return wallet


def outcome(result) -> str:
    if isinstance(result, HoldNotPending):
        return "refused"
    if isinstance(result, Exception):
        raise result
    return "ok" if result is not None else "skipped"


@pytest.mark.django_db(transaction=True)
def test_capture_racing_release_ends_in_exactly_one_outcome():
    account = funded_account("1000.00")
    for _ in range(ROUNDS):
        hold = hold_for(account, "10.00")

        def race(i: int, hold=hold):
            if i == 0:
                return hold_capture(hold=Hold.objects.get(pk=hold.pk), amount="7.00", actor=Actor.system())
            return hold_release(hold=Hold.objects.get(pk=hold.pk), actor=Actor.system())

        results = [outcome(r) for r in run_concurrently(race, 2)]
        assert sorted(results) == ["ok", "refused"]
        hold.refresh_from_db()
        charges = LedgerEntry.objects.filter(metadata__hold=hold.public_id).count()
        assert (hold.status, charges) in {("captured", 1), ("released", 0)}
    wallet = wallet_consistent(account)
    assert wallet.held == 0
    captured = Hold.objects.filter(account=account, status="captured").count()
    assert wallet.balance == Decimal("1000.00") - captured * Decimal("7.00")


@pytest.mark.django_db(transaction=True)
def test_capture_racing_expiry_ends_in_exactly_one_outcome():
    account = funded_account("1000.00")
    for _ in range(ROUNDS):
        hold = hold_for(account, "10.00", on_expiry="capture")
        Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

        def race(i: int, hold=hold):
            current = Hold.objects.select_related("account", "credit_type").get(pk=hold.pk)
            if i == 0:
                return hold_capture(hold=current, amount="3.00", actor=Actor.system())
            return hold_expire(hold=current)

        results = [outcome(r) for r in run_concurrently(race, 2)]
        assert sorted(results) in (["ok", "refused"], ["ok", "skipped"])
        hold.refresh_from_db()
        charges = list(LedgerEntry.objects.filter(metadata__hold=hold.public_id).values_list("amount", flat=True))
        # Capture wins: 3.00 charged. Expiry wins: the held 10.00 charged (on_expiry=capture). Never both.
        assert (hold.status, charges) in [("captured", [Decimal("-3.00")]), ("expired", [Decimal("-10.00")])]
    wallet_consistent(account)


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_expire_each_hold_once():
    account = funded_account("1000.00")
    holds = [hold_for(account, "5.00", on_expiry="capture") for _ in range(20)]
    Hold.objects.filter(pk__in=[h.pk for h in holds]).update(expires_at=timezone.now() - timedelta(seconds=1))
    counts = run_concurrently(lambda i: holds_expire_due(batch_size=3), 4)
    assert sum(counts) == 20
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 20
    wallet = wallet_consistent(account)
    assert (wallet.balance, wallet.held) == (Decimal("900.00"), Decimal("0"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_holds_never_reserve_more_than_the_balance():
    account = funded_account("50.00")
    results = run_concurrently(lambda i: hold_for(account, "10.00"), 8)
    made = [r for r in results if isinstance(r, Hold)]
    assert len(made) == 5
    assert wallet_consistent(account).held == Decimal("50.00")
