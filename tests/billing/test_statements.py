"""Each hand-written statement in billing/statements.py returns what the ORM query it replaces returns."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery, Sum

from accounts.models import Account
from billing import statements
from billing.models import DailyLimitOverride, DailyUsage, LedgerEntry, Plan, Subscription, Wallet
from billing.services import Actor, subscription_create
from refunds.services import refund_issue
from tests.factories import AccountFactory, charge_for, default_credit_type, funded_account

pytestmark = pytest.mark.django_db

WALLET_FIELDS = [f.attname for f in Wallet._meta.concrete_fields]


def _fields(wallet: Wallet) -> dict:
    return {name: getattr(wallet, name) for name in WALLET_FIELDS}


def test_wallet_lock_returns_the_orm_row_and_locks_it():
    account = funded_account("12.50")
    credit_type = default_credit_type()
    with transaction.atomic():
        locked = statements.wallet_lock(account_id=account.pk, credit_type_id=credit_type.pk)
        orm = Wallet.objects.select_for_update(no_key=True).get(account=account, credit_type=credit_type)
        assert _fields(locked) == _fields(orm)
    assert "FOR NO KEY UPDATE" in statements._wallet_lock_sql()


def test_wallet_lock_finds_nothing_where_the_orm_finds_nothing():
    account = AccountFactory()
    with transaction.atomic():
        assert statements.wallet_lock(account_id=account.pk, credit_type_id=default_credit_type().pk) is None
    assert not Wallet.objects.filter(account=account).exists()


def _orm_limit_row(account: Account, credit_type) -> tuple:
    overrides = DailyLimitOverride.objects.filter(account_id=OuterRef("pk"), credit_type_id=credit_type.pk)
    subscriptions = Subscription.objects.filter(
        account_id=OuterRef("pk"), status__in=Subscription.LIVE_STATUSES, plan__credit_type_id=credit_type.pk
    )
    row = (
        Account.objects.filter(pk=account.pk)
        .values(
            has_override=Exists(overrides),
            override=Subquery(overrides.values("daily_limit")[:1]),
            plan_status=Subquery(subscriptions.values("status")[:1]),
            paid_limit=Subquery(subscriptions.values("plan__daily_limit")[:1]),
            trial_limit=Subquery(subscriptions.values("plan__trial_daily_limit")[:1]),
        )
        .get()
    )
    return (row["has_override"], row["override"], row["plan_status"], row["paid_limit"], row["trial_limit"])


def _limit_cases():
    """An account with nothing, with a trial plan, with a paid plan, and with an override on top."""
    credit_type = default_credit_type()
    plan = Plan.objects.create(
        code="statements",
        name="Statements",
        credit_type=credit_type,
        daily_limit=Decimal("5.00"),
        trial_daily_limit=Decimal("1.00"),
    )
    plain = funded_account("1.00")
    trial, paid, overridden = (funded_account("1.00") for _ in range(3))
    subscription_create(account=trial, plan=plan, status=Subscription.Status.TRIALING, actor=Actor.system())
    subscription_create(account=paid, plan=plan, actor=Actor.system())
    subscription_create(account=overridden, plan=plan, actor=Actor.system())
    DailyLimitOverride.objects.create(account=overridden, credit_type=credit_type, daily_limit=Decimal("7.00"))
    return credit_type, [plain, trial, paid, overridden]


def test_daily_limit_row_matches_the_orm_for_every_kind_of_account():
    credit_type, accounts = _limit_cases()
    rows = [statements.daily_limit_row(account_id=a.pk, credit_type_id=credit_type.pk) for a in accounts]
    assert rows == [_orm_limit_row(a, credit_type) for a in accounts]
    assert {row[2] for row in rows} == {None, "trialing", "active"}  # the cases really differ


def test_wallet_lock_for_debit_returns_the_locked_row_and_the_same_limit_columns():
    credit_type, accounts = _limit_cases()
    for account in accounts:
        with transaction.atomic():
            wallet, limit_row = statements.wallet_lock_for_debit(account_id=account.pk, credit_type_id=credit_type.pk)
            assert _fields(wallet) == _fields(Wallet.objects.get(account=account, credit_type=credit_type))
            assert limit_row == _orm_limit_row(account, credit_type)
    assert "FOR NO KEY UPDATE OF w" in statements._wallet_lock_for_debit_sql()


def test_daily_usage_add_inserts_then_accumulates_like_the_orm_row():
    account = funded_account("10.00")
    wallet = Wallet.objects.get(account=account)
    day = date(2026, 3, 1)
    assert statements.daily_usage_add(account_id=account.pk, wallet_id=wallet.pk, day=day, amount=Decimal("1.25")) == (
        Decimal("1.25")
    )
    total = statements.daily_usage_add(account_id=account.pk, wallet_id=wallet.pk, day=day, amount=Decimal("2.00"))
    assert total == DailyUsage.objects.get(wallet=wallet, day=day).used == Decimal("3.25")
    assert DailyUsage.objects.filter(wallet=wallet).count() == 1


def test_charge_refunded_total_matches_the_orm_aggregate():
    account = funded_account("10.00")
    charge = charge_for(account, "3.00")
    other = charge_for(account, "2.00")
    assert statements.charge_refunded_total(charge_id=charge.pk) == Decimal(0)
    for amount in ("1.00", "0.50"):
        refund_issue(charge=charge, reason="other", amount=amount, actor=Actor.system())
    refund_issue(charge=other, reason="other", actor=Actor.system())
    orm = LedgerEntry.objects.filter(related_entry=charge, kind="refund").aggregate(s=Sum("amount"))["s"]
    assert statements.charge_refunded_total(charge_id=charge.pk) == orm == Decimal("1.50")


def test_statements_are_built_once_per_process():
    with connection.cursor():
        first = statements._wallet_lock_for_debit_sql()
    assert statements._wallet_lock_for_debit_sql() is first
