"""Every hand-written SQL statement of the ledger, and its cache: the one place the ORM is bypassed.

Why bypass it at all: a wallet is only as fast as its lock is short, and the
lock is held from the locking statement until COMMIT. Compiling an ORM query
cost more client CPU than PostgreSQL spent running it (docs/performance.md),
so the statements that run under a wallet lock on every money movement are
built once per process and sent as prepared statements. Each one says why it
is here, and `tests/billing/test_statements.py` checks it against the ORM
query it replaces (same rows, same values).

Generic single-row INSERT / UPDATE / SELECT statements built from model
metadata live in `config/rows.py` (the accounts layer uses them too); this
module holds the statements that are written by hand for one purpose.

Only the models' own table and column names and our own constants are ever
formatted into these strings; every value is a bound parameter.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection

from billing.models import DailyLimitOverride, DailyUsage, LedgerEntry, Plan, Subscription, Wallet

_WALLET_FIELDS = [f.attname for f in Wallet._meta.concrete_fields]


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _once(build):
    """Cache a statement builder's result for the life of the process (the SQL never changes)."""
    cached: list[str] = []

    def get() -> str:
        if not cached:
            cached.append(build())
        return cached[0]

    get.build = build  # type: ignore[attr-defined]  # for the tests: the uncached text
    return get


def _wallet_from(row: tuple) -> Wallet:
    return Wallet.from_db(connection.alias, _WALLET_FIELDS, row[: len(_WALLET_FIELDS)])


# --- the wallet lock -----------------------------------------------------------
#
# ORM: Wallet.objects.select_for_update(no_key=True).filter(account_id=..., credit_type_id=...)
# Why: runs once per money movement; compiling the queryset cost ~0.7 ms of
# client CPU. The text is the ORM's own compiled SQL, taken once.


@_once
def _wallet_lock_sql() -> str:
    account_mark, credit_type_mark = -7001, -7002
    queryset = Wallet.objects.select_for_update(no_key=True).filter(
        account_id=account_mark, credit_type_id=credit_type_mark
    )
    sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    if list(params) != [account_mark, credit_type_mark]:  # a Django upgrade that reorders them must fail loudly
        raise RuntimeError(f"Unexpected wallet lock parameters: {params}")
    return sql


def wallet_lock(*, account_id: int, credit_type_id: int) -> Wallet | None:
    """The wallet row, locked `FOR NO KEY UPDATE` until the transaction ends (no related rows)."""
    with connection.cursor() as cursor:
        cursor.execute(_wallet_lock_sql(), [account_id, credit_type_id])
        row = cursor.fetchone()
    return None if row is None else _wallet_from(row)


# --- the daily limit -----------------------------------------------------------
#
# The limit in force for (w.account_id, w.credit_type_id): the account's
# override if any, else its live subscription's plan. One fragment, shared by
# the debit lock and `daily_limit_row`; its five columns are what
# `billing.core.daily_limit_from` takes.

_LIMIT_COLUMNS = "o.id IS NOT NULL, o.daily_limit, s.status, s.daily_limit, s.trial_daily_limit"
_LIMIT_JOINS = """
LEFT JOIN {override} o ON o.account_id = w.account_id AND o.credit_type_id = w.credit_type_id
LEFT JOIN LATERAL (
    SELECT s.status, p.daily_limit, p.trial_daily_limit
    FROM {subscription} s JOIN {plan} p ON p.id = s.plan_id
    WHERE s.account_id = w.account_id AND s.status IN ({live}) AND p.credit_type_id = w.credit_type_id
    LIMIT 1
) s ON true
"""


def _limit_joins() -> str:
    return _LIMIT_JOINS.format(
        override=_quote(DailyLimitOverride._meta.db_table),
        subscription=_quote(Subscription._meta.db_table),
        plan=_quote(Plan._meta.db_table),
        live=", ".join(f"'{status}'" for status in Subscription.LIVE_STATUSES),
    )


# ORM: the wallet lock above, then `daily_limit_row` below.
# Why: the debit paths (charges, holds) need both; one statement makes one
# round trip before the writes instead of two. `FOR NO KEY UPDATE OF w` locks
# the wallet row only; the limit tables are read, not locked, in the same
# snapshot.
@_once
def _wallet_lock_for_debit_sql() -> str:
    columns = ", ".join(f"w.{_quote(f.column)}" for f in Wallet._meta.concrete_fields)
    return (
        f"SELECT {columns}, {_LIMIT_COLUMNS} FROM {_quote(Wallet._meta.db_table)} w {_limit_joins()}"  # noqa: S608
        "WHERE w.account_id = %s AND w.credit_type_id = %s FOR NO KEY UPDATE OF w"
    )


def wallet_lock_for_debit(*, account_id: int, credit_type_id: int) -> tuple[Wallet | None, tuple | None]:
    """The locked wallet row and the raw daily-limit columns; (None, None) if there is no wallet."""
    with connection.cursor() as cursor:
        cursor.execute(_wallet_lock_for_debit_sql(), [account_id, credit_type_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    return _wallet_from(row), tuple(row[len(_WALLET_FIELDS) :])


# ORM: an Exists and four Subqueries over DailyLimitOverride and Subscription
# (see the test). Why: ran on every charge before the debit lock read the
# limit itself; still serves `daily_limit_get` (the balance endpoint, the
# admin) and shares its fragment with the lock, so the two cannot disagree.
@_once
def _daily_limit_sql() -> str:
    return (
        f"SELECT {_LIMIT_COLUMNS} FROM (SELECT %s::bigint AS account_id, "  # noqa: S608 - our names only
        f"%s::bigint AS credit_type_id) w {_limit_joins()}"
    )


def daily_limit_row(*, account_id: int, credit_type_id: int) -> tuple:
    """The raw daily-limit columns for an account and credit type (no lock)."""
    with connection.cursor() as cursor:
        cursor.execute(_daily_limit_sql(), [account_id, credit_type_id])
        return tuple(cursor.fetchone())


# --- daily usage -----------------------------------------------------------------
#
# ORM: DailyUsage get_or_create + F() update, which needs two statements and a
# retry on the insert race. Why: one upsert, under the wallet lock, counts the
# debit and returns the day's total, so concurrent debits cannot overshoot.


@_once
def _daily_usage_add_sql() -> str:
    table = _quote(DailyUsage._meta.db_table)
    return (
        f"INSERT INTO {table} (account_id, wallet_id, day, used) VALUES (%s, %s, %s, %s) "  # noqa: S608
        f"ON CONFLICT (account_id, wallet_id, day) DO UPDATE SET used = {table}.used + EXCLUDED.used "
        "RETURNING used"
    )


def daily_usage_add(*, account_id: int, wallet_id: int, day: date, amount: Decimal) -> Decimal:
    """Add `amount` to the wallet's usage on `day`; the day's new total."""
    with connection.cursor() as cursor:
        cursor.execute(_daily_usage_add_sql(), [account_id, wallet_id, day, amount])
        return cursor.fetchone()[0]


# --- refunds ---------------------------------------------------------------------
#
# ORM: LedgerEntry.objects.filter(related_entry=charge, kind="refund").aggregate(Sum("amount"))
# Why: runs under the wallet lock on every refund; a fixed statement instead
# of an aggregate compiled per call.


@_once
def _refunded_total_sql() -> str:
    return (
        f"SELECT sum(amount) FROM {_quote(LedgerEntry._meta.db_table)} "  # noqa: S608 - our names only
        "WHERE related_entry_id = %s AND kind = %s"
    )


def charge_refunded_total(*, charge_id: int) -> Decimal:
    """What has been refunded of the charge so far (positive; zero if nothing)."""
    with connection.cursor() as cursor:
        cursor.execute(_refunded_total_sql(), [charge_id, LedgerEntry.Kind.REFUND])
        total: Any = cursor.fetchone()[0]
    return total or Decimal(0)
