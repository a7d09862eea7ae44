"""Each hand-written statement in billing/statements.py returns what the ORM query it replaces returns."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, Subquery, Sum

from accounts.models import Account
from billing import statements
from billing.core import daily_limit_from
from billing.models import DailyLimitOverride, DailyUsage, LedgerEntry, Wallet
from billing.services import Actor
from refunds.services import refund_issue
from subscriptions.models import Plan, Subscription
from subscriptions.services import subscription_create
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
    ).annotate(
        is_trial=ExpressionWrapper(Q(status=Subscription.Status.TRIALING), output_field=BooleanField()),
    )
    row = (
        Account.objects.filter(pk=account.pk)
        .values(
            has_override=Exists(overrides),
            override=Subquery(overrides.values("daily_limit")[:1]),
            is_trial=Subquery(subscriptions.values("is_trial")[:1]),
            paid_limit=Subquery(subscriptions.values("plan__daily_limit")[:1]),
            trial_limit=Subquery(subscriptions.values("plan__trial_daily_limit")[:1]),
        )
        .get()
    )
    return (row["has_override"], row["override"], row["is_trial"], row["paid_limit"], row["trial_limit"])


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
    assert {row[2] for row in rows} == {None, True, False}  # the cases really differ


def test_wallet_lock_for_debit_returns_the_locked_row_and_the_same_limit_columns():
    credit_type, accounts = _limit_cases()
    limits = []
    for account in accounts:
        with transaction.atomic():
            wallet, limit_row = statements.wallet_lock_for_debit(account_id=account.pk, credit_type_id=credit_type.pk)
            assert _fields(wallet) == _fields(Wallet.objects.get(account=account, credit_type=credit_type))
            assert limit_row == _orm_limit_row(account, credit_type)
            limits.append(daily_limit_from(*limit_row))
    # Nothing, the plan's trial limit, its paid limit, the override: the lock reads the plan's limit.
    assert limits == [None, Decimal("1.00"), Decimal("5.00"), Decimal("7.00")]
    assert "FOR NO KEY UPDATE OF w" in statements._wallet_lock_for_debit_sql()


def test_wallets_lock_for_debit_returns_what_the_single_lock_returns_for_each_wallet():
    credit_type, accounts = _limit_cases()
    without_wallet = AccountFactory()
    keys = [(a.pk, credit_type.pk) for a in [*accounts, without_wallet]]
    with transaction.atomic():
        singles = {
            (a.pk, credit_type.pk): statements.wallet_lock_for_debit(account_id=a.pk, credit_type_id=credit_type.pk)
            for a in accounts
        }
    with transaction.atomic():
        locked = statements.wallets_lock_for_debit(keys=list(reversed(keys)))
    assert set(locked) == set(singles)  # the account without a wallet is absent
    for key, (wallet, limit_row) in locked.items():
        assert _fields(wallet) == _fields(singles[key][0])
        assert limit_row == singles[key][1]
    sql = statements._wallets_lock_for_debit_sql()
    assert "ORDER BY w.account_id, w.credit_type_id FOR NO KEY UPDATE OF w" in sql
    assert statements._wallet_lock_for_debit_sql().split(" FROM ")[0] == sql.split(" FROM ")[0]  # same columns


def test_billing_alone_has_no_plan_limits_only_overrides(monkeypatch):
    """Without a registered plan limit source the fragment is a NULL row: the same accounts, no plan limit."""
    credit_type, accounts = _limit_cases()
    monkeypatch.setattr(statements, "_plan_limit_sources", [])
    lock_sql = statements._wallet_lock_for_debit_sql.build()  # uncached: the text billing alone would build
    limit_sql = statements._daily_limit_sql.build()
    limits = []
    with transaction.atomic(), connection.cursor() as cursor:
        for account in accounts:
            cursor.execute(lock_sql, [account.pk, credit_type.pk])
            lock_row = cursor.fetchone()
            cursor.execute(limit_sql, [account.pk, credit_type.pk])
            assert tuple(lock_row[len(WALLET_FIELDS) :]) == tuple(cursor.fetchone())
            limits.append(daily_limit_from(*lock_row[len(WALLET_FIELDS) :]))
    assert limits == [None, None, None, Decimal("7.00")]


def test_a_plan_limit_source_is_registered_once_and_before_the_statements_are_built(monkeypatch):
    statements._wallet_lock_for_debit_sql()
    with pytest.raises(ImproperlyConfigured):
        statements.plan_limit_source_register(lambda: statements._NO_PLAN_LIMITS)  # a second source
    monkeypatch.setattr(statements, "_plan_limit_sources", [])
    with pytest.raises(RuntimeError):
        statements.plan_limit_source_register(lambda: statements._NO_PLAN_LIMITS)  # too late: already built


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


def test_idempotency_claim_inserts_the_row_the_orm_reads_back_and_refuses_a_taken_key():
    from datetime import UTC, datetime

    from billing.models import IdempotencyRecord
    from tests.factories import service_key

    account = AccountFactory()
    api_key, _ = service_key()
    claim = {
        "account_id": account.pk,
        "api_key_id": api_key.pk,
        "key": "k-1",
        "endpoint": "POST /api/v1/charges",
        "request_hash": "f" * 64,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "lock_timeout_ms": 1234,
    }
    with transaction.atomic():
        record_id = statements.idempotency_claim(**claim)
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "1234ms"
    record = IdempotencyRecord.objects.get(pk=record_id)
    assert (record.account_id, record.api_key_id, record.key, record.endpoint, record.request_hash) == (
        account.pk,
        api_key.pk,
        "k-1",
        "POST /api/v1/charges",
        "f" * 64,
    )
    assert record.created_at == claim["created_at"] and record.response_status is None
    assert statements.idempotency_claim(**claim) is None


def test_table_row_estimate_is_the_planners_count_after_analyze():
    funded_account("1.00")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {LedgerEntry._meta.db_table}")
    assert statements.table_row_estimate(LedgerEntry) == LedgerEntry.objects.count()


def _tampered_wallets():
    """Three wallets; one's balance, one's held and one's lot balance no longer match their rows."""
    from billing.models import CreditLot, Hold
    from tests.factories import hold_for

    off_balance, off_held, off_lots = (funded_account("10.00") for _ in range(3))
    hold_for(off_held, "2.00")
    Wallet.objects.filter(account=off_balance).update(balance=Decimal("13.00"))
    Wallet.objects.filter(account=off_held).update(held=Decimal("5.00"))
    Wallet.objects.filter(account=off_lots).update(lot_balance=Decimal("1.00"))
    return CreditLot, Hold


def _orm_sum_mismatches(column: str, total) -> set[tuple]:
    from django.db.models import F
    from django.db.models.functions import Coalesce

    wallets = Wallet.objects.annotate(total=Coalesce(total, Decimal(0))).exclude(**{column: F("total")})
    return {(w.pk, getattr(w, column), w.total) for w in wallets}


def test_reconcile_sum_checks_return_exactly_the_wallets_the_orm_finds_out_of_step():
    from django.db.models import Q
    from django.db.models import Sum as Total

    _tampered_wallets()
    found = {
        "balance": set(statements.reconcile_balance_mismatches(account_id=None)),
        "held": set(statements.reconcile_held_mismatches(account_id=None)),
        "lot_balance": set(statements.reconcile_lot_mismatches(account_id=None)),
    }
    assert found["balance"] == _orm_sum_mismatches("balance", Total("entries__amount"))
    assert found["held"] == _orm_sum_mismatches("held", Total("holds__amount", filter=Q(holds__status="pending")))
    assert found["lot_balance"] == _orm_sum_mismatches("lot_balance", Total("lots__remaining"))
    assert all(len(rows) == 1 for rows in found.values())


def test_reconcile_checks_scoped_to_an_account_see_only_its_wallets():
    _tampered_wallets()
    (wallet_id, _, _), *_ = statements.reconcile_balance_mismatches(account_id=None)
    account_id = Wallet.objects.get(pk=wallet_id).account_id
    assert [row[0] for row in statements.reconcile_balance_mismatches(account_id=account_id)] == [wallet_id]
    assert list(statements.reconcile_held_mismatches(account_id=account_id)) == []


def test_reconcile_over_refunds_matches_the_orm_for_a_refund_past_its_charge():
    from django.db.models import Sum as Total

    account = funded_account("10.00")
    charge = charge_for(account, "2.00")
    refund_issue(charge=charge, reason="other", actor=Actor.system())
    assert list(statements.reconcile_over_refunds(account_id=None)) == []
    with connection.cursor() as cursor:  # the over-refund trigger is what would refuse this; bypass it
        cursor.execute("SET session_replication_role = replica")
        try:
            LedgerEntry.objects.bulk_create(
                [
                    LedgerEntry(
                        wallet_id=charge.wallet_id,
                        account=account,
                        credit_type=charge.credit_type,
                        kind="refund",
                        amount=Decimal("1.00"),
                        balance_after=Decimal("11.00"),
                        related_entry=charge,
                    )
                ]
            )
        finally:
            cursor.execute("SET session_replication_role = origin")
    refunded = LedgerEntry.objects.filter(related_entry=charge, kind="refund").aggregate(t=Total("amount"))["t"]
    assert list(statements.reconcile_over_refunds(account_id=None)) == [
        (charge.pk, charge.wallet_id, "charge", charge.amount, refunded)
    ]


def test_reconcile_stale_holds_and_lots_match_the_orm_filters():
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import CreditLot, Hold
    from billing.services import grant_create
    from tests.factories import hold_for

    account = funded_account("10.00")
    hold = hold_for(account, "1.00")
    grant_create(
        account=account,
        credit_type=default_credit_type(),
        amount="3.00",
        actor=Actor.system(),
        expires_at=timezone.now() + timedelta(days=1),
    )
    later = timezone.now() + timedelta(days=2)
    holds = list(statements.reconcile_stale_holds(account_id=None, expired_before=later))
    lots = list(statements.reconcile_stale_lots(account_id=None, expired_before=later))
    orm_holds = Hold.objects.filter(status="pending", expires_at__lt=later)
    orm_lots = CreditLot.objects.filter(remaining__gt=0, expires_at__isnull=False, expires_at__lt=later)
    assert holds == [(h.pk, h.wallet_id, h.amount, h.expires_at) for h in orm_holds] and holds[0][0] == hold.pk
    assert lots == [(lot.pk, lot.wallet_id, lot.remaining, lot.expires_at) for lot in orm_lots] and len(lots) == 1
    assert list(statements.reconcile_stale_holds(account_id=None, expired_before=timezone.now())) == []


def test_idempotency_claim_many_claims_free_keys_in_order_and_answer_many_stores_what_the_orm_reads():
    from datetime import UTC, datetime

    from billing.models import IdempotencyRecord
    from tests.factories import service_key

    account = AccountFactory()
    api_key, _ = service_key()
    taken = statements.idempotency_claim(
        account_id=account.pk,
        api_key_id=api_key.pk,
        key="b",
        endpoint="POST /api/v1/charges",
        request_hash="0" * 64,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        lock_timeout_ms=1000,
    )
    items = [(account.pk, key, "POST /api/v1/charges", key * 64) for key in ("a", "b", "c")]
    with transaction.atomic():
        claimed = statements.idempotency_claim_many(
            api_key_id=api_key.pk, items=items, created_at=datetime(2026, 1, 2, tzinfo=UTC), lock_timeout_ms=1234
        )
        with connection.cursor() as cursor:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "1234ms"
    assert set(claimed) == {(account.pk, "a"), (account.pk, "c")}
    assert claimed[(account.pk, "a")] < claimed[(account.pk, "c")]  # inserted in the order given
    rows = {r.key: r for r in IdempotencyRecord.objects.filter(api_key=api_key)}
    assert (rows["a"].request_hash, rows["a"].endpoint, rows["a"].response_status) == (
        "a" * 64,
        "POST /api/v1/charges",
        None,
    )
    assert rows["b"].pk == taken and rows["b"].request_hash == "0" * 64
    statements.idempotency_answer_many(answers={rows["a"].pk: (201, b'{"x":1}'), rows["c"].pk: (402, b"{}")})
    rows = {r.key: r for r in IdempotencyRecord.objects.filter(api_key=api_key)}
    assert (rows["a"].response_status, bytes(rows["a"].response_raw)) == (201, b'{"x":1}')
    assert (rows["c"].response_status, bytes(rows["c"].response_raw)) == (402, b"{}")
    assert rows["b"].response_status is None


def test_idempotency_claim_send_is_the_claim_read_later():
    from datetime import UTC, datetime

    from billing.models import IdempotencyRecord
    from tests.factories import service_key

    account = AccountFactory()
    api_key, _ = service_key()
    claim = {
        "account_id": account.pk,
        "api_key_id": api_key.pk,
        "key": "sent",
        "endpoint": "POST /api/v1/charges",
        "request_hash": "e" * 64,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "lock_timeout_ms": 1000,
    }
    first = statements.idempotency_claim_send(**claim)
    assert first.answered()
    (record_id,) = first.row()
    record = IdempotencyRecord.objects.get(pk=record_id)
    assert (record.account_id, record.api_key_id, record.key, record.request_hash) == (
        account.pk,
        api_key.pk,
        "sent",
        "e" * 64,
    )
    assert statements.idempotency_claim_send(**claim).row() is None  # taken


# --- the hash chain ---------------------------------------------------------------------------


def _chain_pass() -> None:
    from billing import chain

    statements.reconcile_checkpoint_heads_load(iter(()))
    key_ids, inner, outer = chain.verifying_keys()
    statements.reconcile_chain_build(account_id=None, key_ids=key_ids, inner=inner, outer=outer)


def test_the_chain_pass_keeps_each_wallets_newest_entry_and_count_as_the_orm_finds_them():
    from django.db.models import Count, Max

    accounts = [funded_account("10.00") for _ in range(3)]
    charge_for(accounts[0], "1.00")
    charge_for(accounts[0], "2.00")
    orm = {
        w["id"]: (w["n"], LedgerEntry.objects.get(pk=w["newest"]).entry_hash)
        for w in Wallet.objects.annotate(n=Count("entries"), newest=Max("entries__id")).values("id", "n", "newest")
    }
    with transaction.atomic():
        _chain_pass()
        heads = {wallet_id: (n, head) for wallet_id, n, head in statements.reconcile_chain_heads()}
        assert list(statements.reconcile_chain_breaks()) == []
        assert list(statements.reconcile_balance_after_breaks()) == []
        assert list(statements.reconcile_chain_head_mismatches(account_id=None)) == []
        stored = {wallet_id: (n, head) for wallet_id, n, head in statements.wallet_chain_heads()}
    assert heads == orm == stored


def test_the_chain_pass_names_an_edited_entry_like_a_python_recomputation():
    from billing import chain

    account = funded_account("10.00")
    charge = charge_for(account, "1.00")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE billing_ledgerentry SET amount = -2 WHERE id = %s", [charge.pk])
    charge.refresh_from_db()
    grant = LedgerEntry.objects.get(account=account, kind="grant")
    assert chain.entry_hash(charge, prev_hash=grant.entry_hash, key_id=charge.key_id) != charge.entry_hash
    with transaction.atomic():
        _chain_pass()
        assert [row[1] for row in statements.reconcile_chain_breaks()] == [charge.pk]
