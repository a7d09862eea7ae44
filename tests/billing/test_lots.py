"""Grant lots: priority, expiry, and the order in which charges consume credits."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.exceptions import InvalidGrantTerms
from billing.models import CreditLot, LedgerEntry, Wallet
from billing.services import (
    Actor,
    adjustment_create,
    charge_create,
    grant_create,
    grants_expire_due,
    hold_capture,
    hold_create,
    hold_release,
)
from refunds.services import refund_issue
from tests.concurrency import run_concurrently
from tests.factories import AccountFactory, default_credit_type

D = Decimal


def grant(account, amount, *, days=None, priority=0, now=None):
    expires_at = (now or timezone.now()) + timedelta(days=days) if days is not None else None
    return grant_create(
        account=account,
        credit_type=default_credit_type(),
        amount=D(amount),
        actor=Actor.system(),
        expires_at=expires_at,
        priority=priority,
    )


def charge(account, amount):
    return charge_create(account=account, credit_type=default_credit_type(), amount=D(amount), actor=Actor.system())


def wallet_of(account) -> Wallet:
    return Wallet.objects.get(account=account, credit_type=default_credit_type())


def remaining(entry) -> Decimal:
    return CreditLot.objects.get(entry=entry).remaining


def assert_invariants(account) -> None:
    wallet = wallet_of(account)
    ledger = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"] or D(0)
    lots = CreditLot.objects.filter(wallet=wallet).aggregate(s=Sum("remaining"))["s"] or D(0)
    assert ledger == wallet.balance
    assert lots == wallet.lot_balance <= wallet.balance


@pytest.mark.django_db
def test_plain_grant_joins_the_pool_without_a_lot():
    account = AccountFactory()
    grant(account, "10")
    assert not CreditLot.objects.exists()
    assert wallet_of(account).lot_balance == 0


@pytest.mark.django_db
def test_charge_on_a_wallet_without_lots_never_touches_the_lot_table():
    account = AccountFactory()
    grant(account, "10")
    with CaptureQueriesContext(connection) as queries:
        charge(account, "1")
    assert not [q for q in queries.captured_queries if "billing_creditlot" in q["sql"]]


@pytest.mark.django_db
def test_grant_with_expiry_or_priority_gets_a_lot():
    account = AccountFactory()
    expiring = grant(account, "10", days=30)
    prioritised = grant(account, "5", priority=3)
    assert remaining(expiring) == D("10") and remaining(prioritised) == D("5")
    assert wallet_of(account).lot_balance == D("15")


@pytest.mark.django_db
def test_charges_consume_by_priority_then_soonest_expiry_then_oldest_with_the_pool_in_its_place():
    account = AccountFactory()
    low = grant(account, "10", priority=-1)  # consumed after the pool
    late = grant(account, "10", days=20)
    grant(account, "10")  # the pool: no lot
    soon = grant(account, "10", days=5)
    high = grant(account, "10", priority=5, days=60)  # priority beats a sooner expiry

    charge(account, "15")  # high (10), then soon (5)
    assert remaining(high) == 0 and remaining(soon) == D("5")
    charge(account, "10")  # soon (5), then late (5)
    assert remaining(soon) == 0 and remaining(late) == D("5")
    charge(account, "10")  # late (5), then the pool (5)
    assert remaining(late) == 0 and remaining(low) == D("10")
    assert wallet_of(account).balance - wallet_of(account).lot_balance == D("5")
    charge(account, "8")  # the pool (5), then the low-priority lot (3)
    assert remaining(low) == D("7")
    assert_invariants(account)


@pytest.mark.django_db
def test_same_priority_and_expiry_consumes_the_oldest_first():
    account = AccountFactory()
    now = timezone.now()
    first = grant(account, "4", days=10, now=now)
    second = grant(account, "4", days=10, now=now)
    charge(account, "5")
    assert remaining(first) == 0 and remaining(second) == D("3")


@pytest.mark.django_db
def test_negative_adjustment_consumes_lots_and_positive_one_joins_the_pool():
    account = AccountFactory()
    lot = grant(account, "10", days=3)
    adjustment_create(
        account=account, credit_type=default_credit_type(), amount=D("-4"), actor=Actor.system(), reason="fix"
    )
    assert remaining(lot) == D("6")
    adjustment_create(
        account=account, credit_type=default_credit_type(), amount=D("2"), actor=Actor.system(), reason="goodwill"
    )
    assert wallet_of(account).lot_balance == D("6") and wallet_of(account).balance == D("8")
    assert_invariants(account)


@pytest.mark.django_db
def test_grants_expire_in_order_with_charges_spanning_several_grants():
    account = AccountFactory()
    now = timezone.now()
    a = grant(account, "10", days=1, now=now)
    b = grant(account, "10", days=2, now=now)
    c = grant(account, "10", days=3, now=now)
    grant(account, "5")  # pool, never expires

    charge(account, "15")  # all of a, half of b
    assert remaining(a) == 0 and remaining(b) == D("5")
    assert grants_expire_due(now=now + timedelta(days=1, minutes=1)) == 0  # a was used up: nothing to expire
    charge(account, "3")  # from b
    assert grants_expire_due(now=now + timedelta(days=2, minutes=1)) == 1  # b's last 2
    charge(account, "1")  # from c
    assert grants_expire_due(now=now + timedelta(days=3, minutes=1)) == 1  # c's last 9

    expiries = LedgerEntry.objects.filter(account=account, kind="expiry").order_by("id")
    assert [e.amount for e in expiries] == [D("-2"), D("-9")]
    assert [e.related_entry_id for e in expiries] == [b.pk, c.pk]
    assert sum(e.amount for e in expiries) == D("-11")
    wallet = wallet_of(account)
    assert wallet.balance == D("35") - D("19") - D("11") == D("5")  # only the pool is left
    assert wallet.lot_balance == 0
    assert_invariants(account)


@pytest.mark.django_db
def test_expiry_runs_are_idempotent():
    account = AccountFactory()
    now = timezone.now()
    grant(account, "10", days=1, now=now)
    later = now + timedelta(days=2)
    assert grants_expire_due(now=later) == 1
    assert grants_expire_due(now=later) == 0
    assert LedgerEntry.objects.filter(account=account, kind="expiry").count() == 1
    assert wallet_of(account).balance == 0


@pytest.mark.django_db
def test_nothing_expires_before_its_time():
    account = AccountFactory()
    now = timezone.now()
    lot = grant(account, "10", days=1, now=now)
    assert grants_expire_due(now=now + timedelta(hours=23)) == 0
    assert remaining(lot) == D("10")


@pytest.mark.django_db
def test_expiry_takes_only_what_pending_holds_do_not_reserve():
    account = AccountFactory()
    now = timezone.now()
    lot = grant(account, "10", days=1, now=now)
    hold = hold_create(account=account, credit_type=default_credit_type(), amount=D("7"), actor=Actor.system())
    later = now + timedelta(days=2)

    assert grants_expire_due(now=later) == 1
    assert LedgerEntry.objects.get(account=account, kind="expiry").amount == D("-3")
    wallet = wallet_of(account)
    assert wallet.balance == wallet.held == D("7") and remaining(lot) == D("7")

    hold_release(hold=hold, actor=Actor.system())
    assert grants_expire_due(now=later) == 1  # the rest, once no longer reserved
    assert wallet_of(account).balance == 0
    assert_invariants(account)


@pytest.mark.django_db
def test_a_capture_consumes_lots_like_a_charge():
    account = AccountFactory()
    grant(account, "10")
    lot = grant(account, "10", days=1)
    pending = hold_create(account=account, credit_type=default_credit_type(), amount=D("6"), actor=Actor.system())
    hold_capture(hold=pending, amount=D("4"), actor=Actor.system())
    assert remaining(lot) == D("6")
    assert_invariants(account)


@pytest.mark.django_db
def test_a_refund_returns_credits_to_the_pool_not_to_the_expiring_lot():
    account = AccountFactory()
    lot = grant(account, "10", days=1)
    spent = charge(account, "4")
    refund_issue(charge=spent, actor=Actor.system(), reason="backend_failure")
    wallet = wallet_of(account)
    assert remaining(lot) == D("6") and wallet.balance == D("10") and wallet.lot_balance == D("6")
    assert_invariants(account)


@pytest.mark.django_db
@pytest.mark.parametrize("priority", [1001, -1001, True, "1", 1.0])
def test_grant_refuses_bad_priority(priority):
    with pytest.raises(InvalidGrantTerms):
        grant(AccountFactory(), "1", priority=priority)


@pytest.mark.django_db
def test_grant_refuses_a_naive_expiry():
    with pytest.raises(InvalidGrantTerms):
        grant_create(
            account=AccountFactory(),
            credit_type=default_credit_type(),
            amount=D("1"),
            actor=Actor.system(),
            expires_at=timezone.now().replace(tzinfo=None),
        )


@pytest.mark.django_db
def test_database_refuses_a_lot_balance_above_the_balance():
    account = AccountFactory()
    grant(account, "5", days=1)
    with pytest.raises(IntegrityError, match="wallet_lot_balance_within_balance"), transaction.atomic():
        Wallet.objects.filter(account=account).update(lot_balance=D("6"))


@pytest.mark.django_db
def test_database_refuses_a_lot_remaining_above_its_amount():
    account = AccountFactory()
    entry = grant(account, "5", days=1)
    with pytest.raises(IntegrityError, match="lot_remaining_within_amount"), transaction.atomic():
        CreditLot.objects.filter(entry=entry).update(remaining=D("6"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_charges_and_expiry_sweeps_keep_lots_and_ledger_in_step():
    account = AccountFactory()
    now = timezone.now()
    for days in (1, 2, 3):
        grant(account, "10", days=days, now=now)
    grant(account, "10")
    later = now + timedelta(days=2, minutes=1)

    def work(i: int):
        if i % 4 == 0:
            return grants_expire_due(now=later)
        return charge(account, "1")

    results = run_concurrently(work, 16)
    assert not [r for r in results if isinstance(r, Exception)]
    assert_invariants(account)
    wallet = wallet_of(account)
    # 12 charges of 1; the first two lots expired whatever the charges left of them.
    expired = -(LedgerEntry.objects.filter(account=account, kind="expiry").aggregate(s=Sum("amount"))["s"] or 0)
    assert wallet.balance == D("40") - D("12") - expired
    assert not CreditLot.objects.filter(wallet=wallet, expires_at__lte=later, remaining__gt=0).exists()
