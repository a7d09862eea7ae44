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

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models

from billing.models import (
    CreditLot,
    DailyLimitOverride,
    DailyUsage,
    Hold,
    IdempotencyRecord,
    LedgerCheckpointHead,
    LedgerEntry,
    Wallet,
)

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
# override if any, else its plan's. One fragment, shared by the debit lock and
# `daily_limit_row`; its five columns are what `billing.core.daily_limit_from`
# takes.
#
# Plans live in an app above billing, which billing may not name. That app
# registers a *plan limit source* from its AppConfig.ready()
# (`plan_limit_source_register`): a function returning a
# `LEFT JOIN LATERAL (...) s ON true` fragment that yields, for `w.account_id`
# and `w.credit_type_id`, the columns `s.is_trial` (boolean; NULL when no plan
# applies), `s.daily_limit` and `s.trial_daily_limit`. The fragment goes into
# the debit lock's statement, so the charge path still reads wallet and limit
# in one round trip. With no source registered (billing alone) the fragment is
# a constant NULL row: no plan limits, only overrides.
#
# The statements below are built on first use and cached for the process
# (`_once`). First use is a money operation or a limit read, which happens
# after Django has populated the app registry and run every ready(), so the
# source is in the text. A source registered after that would silently be
# missing from the cached statements: registering then raises instead.

_LIMIT_COLUMNS = "o.id IS NOT NULL, o.daily_limit, s.is_trial, s.daily_limit, s.trial_daily_limit"
_OVERRIDE_JOIN = "LEFT JOIN {override} o ON o.account_id = w.account_id AND o.credit_type_id = w.credit_type_id"
_NO_PLAN_LIMITS = (
    "LEFT JOIN LATERAL (SELECT NULL::boolean AS is_trial, NULL::numeric AS daily_limit, "
    "NULL::numeric AS trial_daily_limit) s ON true"
)

_plan_limit_sources: list[Callable[[], str]] = []  # at most one: an account's plan is never ambiguous
_limit_joins_built = False


def plan_limit_source_register(source: Callable[[], str]) -> None:
    """Make `source()` the plan-limit fragment of the daily-limit statements (call from AppConfig.ready()).

    `source` returns the `LEFT JOIN LATERAL (...) s ON true` described above,
    built from its own models' table names and constants only (no parameters).
    """
    if source in _plan_limit_sources:
        return
    if _plan_limit_sources:
        raise ImproperlyConfigured("A plan limit source is already registered; there can be only one.")
    if _limit_joins_built:
        raise RuntimeError("The daily-limit statements are already built: register from AppConfig.ready().")
    _plan_limit_sources.append(source)


def _limit_joins() -> str:
    global _limit_joins_built
    _limit_joins_built = True
    plan_limits = _plan_limit_sources[0]() if _plan_limit_sources else _NO_PLAN_LIMITS
    override = _OVERRIDE_JOIN.format(override=_quote(DailyLimitOverride._meta.db_table))
    return f"\n{override}\n{plan_limits}\n"


def _wallets_with_limits_select() -> str:
    """`SELECT` every wallet column and the limit columns `FROM` the wallets `w` with the limit joins; no WHERE."""
    columns = ", ".join(f"w.{_quote(f.column)}" for f in Wallet._meta.concrete_fields)
    return f"SELECT {columns}, {_LIMIT_COLUMNS} FROM {_quote(Wallet._meta.db_table)} w {_limit_joins()}"  # noqa: S608


# ORM: the wallet lock above, then `daily_limit_row` below.
# Why: the debit paths (charges, holds) need both; one statement makes one
# round trip before the writes instead of two. `FOR NO KEY UPDATE OF w` locks
# the wallet row only; the limit tables are read, not locked, in the same
# snapshot.
@_once
def _wallet_lock_for_debit_sql() -> str:
    return f"{_wallets_with_limits_select()}WHERE w.account_id = %s AND w.credit_type_id = %s FOR NO KEY UPDATE OF w"


def wallet_lock_for_debit(*, account_id: int, credit_type_id: int) -> tuple[Wallet | None, tuple | None]:
    """The locked wallet row and the raw daily-limit columns; (None, None) if there is no wallet."""
    with connection.cursor() as cursor:
        cursor.execute(_wallet_lock_for_debit_sql(), [account_id, credit_type_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    return _wallet_from(row), tuple(row[len(_WALLET_FIELDS) :])


# ORM: the debit lock above for several wallets at once:
# Wallet.objects.select_for_update(no_key=True, of=("self",)).filter(<(account, credit type) pairs>)
# .order_by("account_id", "credit_type_id"), plus the limit columns per row.
# Why: a batch of charges locks every wallet it charges; one statement makes
# one round trip for all of them instead of one per wallet. The rows are
# locked in (account id, credit type id) order, the order every batch uses,
# so two batches over the same wallets cannot wait on each other in a cycle.
@_once
def _wallets_lock_for_debit_sql() -> str:
    return (
        f"{_wallets_with_limits_select()}"  # noqa: S608 - our names only
        "WHERE (w.account_id, w.credit_type_id) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[])) "
        "ORDER BY w.account_id, w.credit_type_id FOR NO KEY UPDATE OF w"
    )


def wallets_lock_for_debit(*, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], tuple[Wallet, tuple]]:
    """`wallet_lock_for_debit` for every (account id, credit type id) in `keys`, in one statement.

    The locked wallets and their raw daily-limit columns by key; a key
    without a wallet is absent.
    """
    with connection.cursor() as cursor:
        cursor.execute(_wallets_lock_for_debit_sql(), [[a for a, _ in keys], [c for _, c in keys]])
        rows = cursor.fetchall()
    locked: dict[tuple[int, int], tuple[Wallet, tuple]] = {}
    for row in rows:
        wallet = _wallet_from(row)
        locked[(wallet.account_id, wallet.credit_type_id)] = (wallet, tuple(row[len(_WALLET_FIELDS) :]))
    return locked


# ORM: an Exists and four Subqueries over DailyLimitOverride and the plan
# limit source's models (see the test). Why: ran on every charge before the
# debit lock read the limit itself; still serves `daily_limit_get` (the balance endpoint, the
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


# --- idempotency -----------------------------------------------------------------
#
# ORM: SET LOCAL lock_timeout, then IdempotencyRecord(...).save() in a
# savepoint, catching IntegrityError. Why: one round trip and no savepoint on
# every money POST. The lock timeout is set by the SELECT that produces the
# row, so it is in force before the INSERT can wait on a duplicate's
# uncommitted claim; it stays set for the rest of the transaction, so the
# request's wallet lock waits no longer than a duplicate would (503
# `lock_timeout` with Retry-After, nothing changed).


@_once
def _idempotency_claim_sql() -> str:
    return (
        f"INSERT INTO {_quote(IdempotencyRecord._meta.db_table)} "  # noqa: S608 - our names only
        "(account_id, api_key_id, key, endpoint, request_hash, created_at) "
        "SELECT %s, %s, %s, %s, %s, %s FROM (SELECT set_config('lock_timeout', %s, true)) AS timeout "
        "ON CONFLICT (account_id, api_key_id, key) DO NOTHING RETURNING id"
    )


def idempotency_claim(
    *,
    account_id: int,
    api_key_id: int,
    key: str,
    endpoint: str,
    request_hash: str,
    created_at: datetime,
    lock_timeout_ms: int,
) -> int | None:
    """Insert the record and set the transaction's lock timeout; its id, or None if the key is taken.

    Raises OperationalError (lock_not_available) if a duplicate's claim is
    still uncommitted after the timeout.
    """
    params = [account_id, api_key_id, key, endpoint, request_hash, created_at, f"{lock_timeout_ms}ms"]
    with connection.cursor() as cursor:
        cursor.execute(_idempotency_claim_sql(), params)
        row = cursor.fetchone()
    return row[0] if row else None


# ORM: the same as `idempotency_claim` (the same statement). Why: the charge's transaction runs in
# pipeline mode (config/pipeline.py), where reading the claim's answer at once would cost its own
# round trip; it is read with the wallet lock's.
def idempotency_claim_send(
    *,
    account_id: int,
    api_key_id: int,
    key: str,
    endpoint: str,
    request_hash: str,
    created_at: datetime,
    lock_timeout_ms: int,
) -> PendingRow:
    """`idempotency_claim`, its answer read later: in pipeline mode (config/pipeline.py) it travels with the next
    statement whose answer is read (the wallet lock).

    `PendingRow.row()` is (id,) or None if the key is taken; it raises what the
    claim raised (OperationalError lock_not_available). Same statement as
    `idempotency_claim`.
    """
    params = [account_id, api_key_id, key, endpoint, request_hash, created_at, f"{lock_timeout_ms}ms"]
    cursor = connection.cursor()
    try:
        cursor.execute(_idempotency_claim_sql(), params)
    except BaseException:
        cursor.close()
        raise
    return PendingRow(cursor)


class PendingRow:
    """A statement sent whose one-row answer has not been read yet (see `idempotency_claim_send`)."""

    _UNREAD = object()

    def __init__(self, cursor) -> None:
        self._cursor = cursor
        self._row: Any = self._UNREAD

    def answered(self) -> bool:
        """Whether the server's answer to the statement has arrived without error (psycopg holds its result)."""
        return self._row is not self._UNREAD or self._cursor.cursor.pgresult is not None

    def row(self) -> tuple | None:
        if self._row is self._UNREAD:
            try:
                self._row = self._cursor.fetchone()
            finally:
                self._cursor.close()
        return self._row


# --- idempotency: the items of a batch (POST /charges/batch) --------------------------
#
# ORM: one `idempotency_claim` per item, then IdempotencyRecord.objects.bulk_update
# (an UPDATE ... SET ... = CASE WHEN id = ... over every row). Why: a batch of
# 100 items made 100 claim round trips, and the CASE update with 100 byte
# strings took longer than the charges themselves (docs/performance.md, "Batch
# charges"). Here the claims are one INSERT from arrays (rows inserted in the
# order given: the caller sorts them, so two batches wait on each other's keys
# in one order) and the answers one UPDATE from arrays.


@_once
def _idempotency_claim_many_sql() -> str:
    return (
        f"INSERT INTO {_quote(IdempotencyRecord._meta.db_table)} "  # noqa: S608 - our names only
        "(account_id, api_key_id, key, endpoint, request_hash, created_at) "
        "SELECT item.account_id, %s, item.key, item.endpoint, item.request_hash, %s "
        "FROM (SELECT set_config('lock_timeout', %s, true)) AS timeout, "
        "unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::varchar[]) "
        "WITH ORDINALITY AS item(account_id, key, endpoint, request_hash, n) ORDER BY item.n "
        "ON CONFLICT (account_id, api_key_id, key) DO NOTHING RETURNING account_id, key, id"
    )


def idempotency_claim_many(
    *,
    api_key_id: int,
    items: list[tuple[int, str, str, str]],
    created_at: datetime,
    lock_timeout_ms: int,
) -> dict[tuple[int, str], int]:
    """Claim (account_id, key, endpoint, request_hash) rows in the order given; {(account_id, key): id} claimed.

    A key already taken is absent from the answer. Sets the transaction's lock
    timeout first, as `idempotency_claim` does (OperationalError
    lock_not_available if a duplicate's claim is still uncommitted after it).
    """
    columns = list(zip(*items, strict=True)) if items else [[], [], [], []]
    params = [api_key_id, created_at, f"{lock_timeout_ms}ms", *(list(column) for column in columns)]
    with connection.cursor() as cursor:
        cursor.execute(_idempotency_claim_many_sql(), params)
        return {(account_id, key): record_id for account_id, key, record_id in cursor.fetchall()}


@_once
def _idempotency_answer_many_sql() -> str:
    table = _quote(IdempotencyRecord._meta.db_table)
    return (
        f"UPDATE {table} AS r SET response_status = a.status, response_raw = a.raw "  # noqa: S608 - our names only
        "FROM unnest(%s::bigint[], %s::smallint[], %s::bytea[]) AS a(id, status, raw) WHERE r.id = a.id"
    )


def idempotency_answer_many(*, answers: dict[int, tuple[int, bytes]]) -> None:
    """Store each claimed record's answer: {record id: (status, exact body bytes)}."""
    if not answers:
        return
    ids = list(answers)
    with connection.cursor() as cursor:
        cursor.execute(
            _idempotency_answer_many_sql(),
            [ids, [answers[i][0] for i in ids], [answers[i][1] for i in ids]],
        )


# --- the admin -------------------------------------------------------------------
#
# ORM: Model.objects.count(). Why: an exact COUNT(*) over a million-row ledger
# takes seconds on every unfiltered admin list page; the planner's estimate
# is free and good enough for a page count.


def table_row_estimate(model: type[models.Model]) -> int:
    """PostgreSQL's estimate of the table's rows (pg_class.reltuples; -1 or 0 before the first ANALYZE)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# --- reconciliation ----------------------------------------------------------------
#
# ORM: annotate/aggregate queries per wallet (see the tests). Why: each check
# is one GROUP BY over a whole table that returns only the rows that disagree,
# in one statement's snapshot, streamed through a server-side cursor so memory
# stays flat at any ledger size; the ORM would load every wallet's total.

_CHUNK = 2000


def _stream(sql: str, params: list) -> Iterator[tuple]:
    """Rows of `sql`, fetched in chunks through a server-side cursor.

    PostgreSQL never runs a cursor's query in parallel, and these GROUP BYs
    over the whole ledger are exactly what parallel workers speed up (about
    3x at a million rows on two cores; `python -m bench`). So inside a
    transaction the statement first fills a temporary table (CREATE TABLE AS
    may run in parallel, and holds only the disagreeing rows, usually none),
    which the cursor then reads: still one statement's snapshot, still flat
    memory.
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


def _scope(column: str, account_id: int | None) -> tuple[str, list]:
    return ("", []) if account_id is None else (f" AND {column} = %s", [account_id])


def _wallet_sum_mismatches(
    *, column: str, child_table: str, child_sum: str, child_filter: str, child_params: list, account_id: int | None
) -> Iterator[tuple]:
    """(wallet id, stored `column`, SUM(`child_sum`) of its rows in `child_table`) where the two differ."""
    outer, outer_params = _scope("w.account_id", account_id)
    sql = (
        f"SELECT w.id, w.{column}, COALESCE(c.total, 0) FROM {_quote(Wallet._meta.db_table)} w "  # noqa: S608
        f"LEFT JOIN (SELECT wallet_id, SUM({child_sum}) AS total FROM {_quote(child_table)} "
        f"WHERE 1=1{child_filter} GROUP BY wallet_id) c "
        f"ON c.wallet_id = w.id WHERE w.{column} <> COALESCE(c.total, 0){outer}"
    )
    return _stream(sql, [*child_params, *outer_params])


def reconcile_balance_mismatches(*, account_id: int | None) -> Iterator[tuple]:
    """(wallet id, balance, sum of its ledger entries) for every wallet where they differ."""
    scope, params = _scope("account_id", account_id)
    return _wallet_sum_mismatches(
        column="balance",
        child_table=LedgerEntry._meta.db_table,
        child_sum="amount",
        child_filter=scope,
        child_params=params,
        account_id=account_id,
    )


def reconcile_held_mismatches(*, account_id: int | None) -> Iterator[tuple]:
    """(wallet id, held, sum of its pending holds) for every wallet where they differ."""
    scope, params = _scope("account_id", account_id)
    return _wallet_sum_mismatches(
        column="held",
        child_table=Hold._meta.db_table,
        child_sum="amount",
        child_filter=f" AND status = %s{scope}",
        child_params=[Hold.Status.PENDING.value, *params],
        account_id=account_id,
    )


def reconcile_lot_mismatches(*, account_id: int | None) -> Iterator[tuple]:
    """(wallet id, lot_balance, sum of its lots' remaining) for every wallet where they differ."""
    wallet = _quote(Wallet._meta.db_table)
    in_account = f" AND wallet_id IN (SELECT id FROM {wallet} WHERE account_id = %s)"  # noqa: S608 - ours
    return _wallet_sum_mismatches(
        column="lot_balance",
        child_table=CreditLot._meta.db_table,
        child_sum="remaining",
        child_filter=in_account if account_id is not None else "",
        child_params=[account_id] if account_id is not None else [],
        account_id=account_id,
    )


def reconcile_wallets_out_of_bounds(*, account_id: int | None) -> Iterator[tuple]:
    """(wallet id, balance, held) for wallets with a negative figure, or held or lot balance above the balance."""
    scope, params = _scope("account_id", account_id)
    sql = (
        f"SELECT id, balance, held FROM {_quote(Wallet._meta.db_table)} "  # noqa: S608 - table name is ours
        f"WHERE (balance < 0 OR held < 0 OR held > balance OR lot_balance < 0 OR lot_balance > balance){scope}"
    )
    return _stream(sql, params)


def reconcile_over_refunds(*, account_id: int | None) -> Iterator[tuple]:
    """(entry id, wallet id, kind, amount, refunded) for entries refunded past a charge, or refunded but no charge."""
    ledger = _quote(LedgerEntry._meta.db_table)
    scope, params = _scope("r.account_id", account_id)
    sql = (
        f"SELECT c.id, c.wallet_id, c.kind, c.amount, SUM(r.amount) FROM {ledger} r "  # noqa: S608 - ours
        f"JOIN {ledger} c ON c.id = r.related_entry_id "
        f"WHERE r.kind = %s{scope} "
        "GROUP BY c.id, c.wallet_id, c.kind, c.amount "
        "HAVING c.kind <> %s OR SUM(r.amount) > -c.amount"
    )
    return _stream(sql, [LedgerEntry.Kind.REFUND.value, *params, LedgerEntry.Kind.CHARGE.value])


def reconcile_stale_holds(*, account_id: int | None, expired_before: datetime) -> Iterator[tuple]:
    """(hold id, wallet id, amount, expires_at) of holds still pending that expired before the cutoff."""
    scope, params = _scope("account_id", account_id)
    # The partial index hold_pending_expiry serves exactly this filter.
    sql = (
        f"SELECT id, wallet_id, amount, expires_at FROM {_quote(Hold._meta.db_table)} "  # noqa: S608 - ours
        f"WHERE status = %s AND expires_at < %s{scope}"
    )
    return _stream(sql, [Hold.Status.PENDING.value, expired_before, *params])


def reconcile_stale_lots(*, account_id: int | None, expired_before: datetime) -> Iterator[tuple]:
    """(lot id, wallet id, remaining, expires_at) of grant lots with credits left that expired before the cutoff."""
    wallet = _quote(Wallet._meta.db_table)
    scope = f" AND wallet_id IN (SELECT id FROM {wallet} WHERE account_id = %s)" if account_id is not None else ""  # noqa: S608
    # The partial index lot_expiry_due serves exactly this filter.
    sql = (
        f"SELECT id, wallet_id, remaining, expires_at FROM {_quote(CreditLot._meta.db_table)} "  # noqa: S608 - ours
        f"WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at < %s{scope}"
    )
    return _stream(sql, [expired_before] + ([account_id] if account_id is not None else []))


# --- one snapshot for a whole reconciliation --------------------------------------------
#
# ORM: Django sets no isolation level per transaction (only per connection,
# in OPTIONS). Why: reconciliation compares what separate statements read
# (the chain pass's newest entry per wallet with the wallet's chain head,
# read later); at READ COMMITTED each statement sees the commits made since
# the one before, so a charge landing between them looked like tampering.
# REPEATABLE READ gives every statement of the transaction the snapshot of
# its first, as pg_dump does; the run only reads the ledger, so it never
# meets a serialization failure on it.


def transaction_snapshot_fix() -> None:
    """Make the current transaction REPEATABLE READ. Must be its first statement."""
    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


# --- the hash chain (billing/chain.py) ------------------------------------------------
#
# ORM: none can express it; Python could stream every entry and recompute its
# HMAC. Why SQL: one pass over the ledger with window functions (each entry
# beside its predecessor in the wallet), the HMAC recomputed by the server
# with its built-in sha256() from the key's RFC 2104 pads (no extension), so
# the million-row check moves only the rows that disagree and stays within a
# few times the cost of the balance GROUP BY (docs/performance.md).

# The canonical message of billing.chain.entry_message, over a row `e` that has `prev_hash`.
LEDGER_MESSAGE_SQL = (
    "concat(e.key_id, '|', e.public_id, '|', e.wallet_id, '|', e.account_id, '|', e.credit_type_id, '|', "
    "e.kind, '|', e.amount, '|', e.balance_after, '|', e.related_entry_id, '|', e.actor_api_key_id, '|', "
    "e.actor_user_id, '|', (extract(epoch FROM e.created_at) * 1000000)::bigint, '|', e.prev_hash)"
)
_HMAC_SQL = f"encode(sha256(k.opad || sha256(k.ipad || convert_to({LEDGER_MESSAGE_SQL}, 'UTF8'))), 'hex')"


def ledger_entry_hashes(*, entry_ids: list[int], key_ids: list[str], inner: list[bytes], outer: list[bytes]) -> dict:
    """{entry id: the hash the server computes for it over its stored predecessor} (tests, the statement)."""
    ledger = _quote(LedgerEntry._meta.db_table)
    sql = (
        f"SELECT e.id, {_HMAC_SQL} FROM (SELECT x.*, lag(x.entry_hash, 1, '') "  # noqa: S608 - our names only
        f"OVER (PARTITION BY x.wallet_id ORDER BY x.id) AS prev_hash FROM {ledger} x "
        f"WHERE x.wallet_id IN (SELECT wallet_id FROM {ledger} WHERE id = ANY(%s))) e "
        "JOIN unnest(%s::text[], %s::bytea[], %s::bytea[]) AS k(kid, ipad, opad) ON k.kid = e.key_id "
        "WHERE e.id = ANY(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [entry_ids, key_ids, inner, outer, entry_ids])
        return dict(cursor.fetchall())


CHAIN_TABLE = "reconcile_chain"
CHECKPOINT_TABLE = "reconcile_checkpoint_heads"


def reconcile_checkpoint_heads_load(rows: Iterator[tuple[str, int, int, str]]) -> None:
    """Fill this transaction's table of checkpoint heads to compare with: (source, wallet id, entry count, head)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {CHECKPOINT_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {CHECKPOINT_TABLE} (source text, wallet_id bigint, entry_count bigint, "
            "head text) ON COMMIT DROP"
        )
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _CHUNK:
                _checkpoint_heads_insert(cursor, batch)
                batch = []
        _checkpoint_heads_insert(cursor, batch)
        cursor.execute(f"ANALYZE {CHECKPOINT_TABLE}")


def _checkpoint_heads_insert(cursor, batch: list[tuple]) -> None:
    if batch:
        columns = [list(column) for column in zip(*batch, strict=True)]
        cursor.execute(
            f"INSERT INTO {CHECKPOINT_TABLE} SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[])",  # noqa: S608
            columns,
        )


def reconcile_chain_build(
    *, account_id: int | None, key_ids: list[str], inner: list[bytes], outer: list[bytes]
) -> None:
    """One pass over the ledger (or one account's) into this transaction's table `reconcile_chain`.

    It keeps only the rows anything below needs: each entry whose hash, key
    or link does not verify (`hash_ok`), whose balance_after is not its
    predecessor's plus its amount (`balance_ok`), or whose hash differs from
    a checkpoint's head at its position (`checkpoint_source`); and each
    wallet's newest entry (`is_last`: its position `n` is the entry count).
    Needs `reconcile_checkpoint_heads_load` first (an empty table is fine).
    """
    ledger = _quote(LedgerEntry._meta.db_table)
    scope, params = _scope("x.account_id", account_id)
    sql = (
        f"SELECT e.wallet_id, e.id, e.n, e.entry_hash, e.balance_after, e.prev_balance + e.amount AS expected_after, "  # noqa: S608
        f"e.is_last, k.kid IS NOT NULL AND {_HMAC_SQL} = e.entry_hash AS hash_ok, "
        "e.balance_after = e.prev_balance + e.amount AS balance_ok, c.source AS checkpoint_source, e.key_id, "
        "k.kid IS NOT NULL AS key_known "
        "FROM (SELECT x.id, x.wallet_id, x.key_id, x.public_id, x.account_id, x.credit_type_id, x.kind, x.amount, "
        "x.balance_after, x.related_entry_id, x.actor_api_key_id, x.actor_user_id, x.created_at, x.entry_hash, "
        "lag(x.entry_hash, 1, '') OVER w AS prev_hash, lag(x.balance_after, 1, 0) OVER w AS prev_balance, "
        "row_number() OVER w AS n, lead(x.id) OVER w IS NULL AS is_last "
        f"FROM {ledger} x WHERE true{scope} WINDOW w AS (PARTITION BY x.wallet_id ORDER BY x.id)) e "
        "LEFT JOIN unnest(%s::text[], %s::bytea[], %s::bytea[]) AS k(kid, ipad, opad) ON k.kid = e.key_id "
        f"LEFT JOIN {CHECKPOINT_TABLE} c "
        "ON c.wallet_id = e.wallet_id AND c.entry_count = e.n AND c.head <> e.entry_hash"
    )
    outer_sql = (
        f"SELECT * FROM ({sql}) r WHERE r.is_last OR r.hash_ok IS NOT TRUE OR NOT r.balance_ok "  # noqa: S608
        "OR r.checkpoint_source IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {CHAIN_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {CHAIN_TABLE} ON COMMIT DROP AS {outer_sql}",
            [*params, key_ids, inner, outer],
        )
        cursor.execute(f"CREATE INDEX ON {CHAIN_TABLE} (wallet_id) WHERE is_last")


def reconcile_chain_breaks() -> Iterator[tuple]:
    """(wallet id, entry id, entry public id, key id, hash_ok) of entries whose hash, key or link does not verify."""
    ledger = _quote(LedgerEntry._meta.db_table)
    sql = (
        f"SELECT c.wallet_id, c.id, e.public_id, c.key_id, c.key_known FROM {CHAIN_TABLE} c "  # noqa: S608
        f"JOIN {ledger} e ON e.id = c.id WHERE c.hash_ok IS NOT TRUE ORDER BY c.wallet_id, c.id"
    )
    return _stream_plain(sql, [])


def reconcile_balance_after_breaks() -> Iterator[tuple]:
    """(wallet id, entry id, balance_after, previous balance_after + amount) where they differ."""
    sql = (
        f"SELECT wallet_id, id, balance_after, expected_after FROM {CHAIN_TABLE} "  # noqa: S608
        "WHERE NOT balance_ok ORDER BY wallet_id, id"
    )
    return _stream_plain(sql, [])


def reconcile_chain_head_mismatches(*, account_id: int | None) -> Iterator[tuple]:
    """(wallet id, stored chain head, newest entry id, newest entry's hash) where the wallet's head is not it."""
    scope, params = _scope("w.account_id", account_id)
    sql = (
        f"SELECT w.id, w.chain_head, c.id, COALESCE(c.entry_hash, '') FROM {_quote(Wallet._meta.db_table)} w "  # noqa: S608
        f"LEFT JOIN {CHAIN_TABLE} c ON c.wallet_id = w.id AND c.is_last "
        f"WHERE w.chain_head <> COALESCE(c.entry_hash, ''){scope} ORDER BY w.id"
    )
    return _stream_plain(sql, params)


def reconcile_checkpoint_regressions(*, account_id: int | None) -> Iterator[tuple]:
    """(source, wallet id, checkpoint count, current count, entry id at the checkpoint's position or None).

    A wallet that now has fewer entries than the checkpoint counted (or none,
    or is gone), or whose entry at the checkpoint's position has another hash.
    """
    wallet = _quote(Wallet._meta.db_table)
    scope = (
        f" AND cp.wallet_id IN (SELECT id FROM {wallet} WHERE account_id = %s)"  # noqa: S608 - our names only
        if account_id is not None
        else ""
    )
    sql = (
        f"SELECT cp.source, cp.wallet_id, cp.entry_count, COALESCE(c.n, 0), NULL::bigint "  # noqa: S608
        f"FROM {CHECKPOINT_TABLE} cp LEFT JOIN {CHAIN_TABLE} c ON c.wallet_id = cp.wallet_id AND c.is_last "
        f"WHERE COALESCE(c.n, 0) < cp.entry_count{scope} "
        f"UNION ALL SELECT c.checkpoint_source, c.wallet_id, c.n, c.n, c.id FROM {CHAIN_TABLE} c "
        "WHERE c.checkpoint_source IS NOT NULL ORDER BY 2, 1"
    )
    return _stream_plain(sql, [account_id] if account_id is not None else [])


def reconcile_chain_newest(*, wallet_id: int) -> int | None:
    """The id of the wallet's newest entry as of the chain pass (None if it has none)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {CHAIN_TABLE} WHERE wallet_id = %s AND is_last", [wallet_id])  # noqa: S608
        row = cursor.fetchone()
    return row[0] if row else None


def reconcile_chain_heads() -> Iterator[tuple[int, int, str]]:
    """(wallet id, entry count, newest hash) of every wallet in `reconcile_chain` with entries, by wallet id."""
    sql = f"SELECT wallet_id, n, entry_hash FROM {CHAIN_TABLE} WHERE is_last ORDER BY wallet_id"  # noqa: S608
    return _stream_plain(sql, [])


def _stream_plain(sql: str, params: list) -> Iterator[tuple]:
    """Rows of `sql` through a server-side cursor (it reads this transaction's small temporary tables)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(_CHUNK):
            yield from rows


# ORM: LedgerCheckpointHead.objects.bulk_create over the rows read back. Why:
# one INSERT ... SELECT from the chain pass's table moves every wallet's head
# (a million wallets as easily as ten) without a round trip through Python.
def checkpoint_heads_store(*, checkpoint_id: int) -> None:
    """Store the heads of `reconcile_chain` (every wallet with entries) under checkpoint `checkpoint_id`."""
    sql = (
        f"INSERT INTO {_quote(LedgerCheckpointHead._meta.db_table)} (checkpoint_id, wallet_id, entry_count, head) "  # noqa: S608
        f"SELECT %s, wallet_id, n, entry_hash FROM {CHAIN_TABLE} WHERE is_last"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [checkpoint_id])


# ORM: Wallet.objects.annotate(n=Count("entries")).filter(n__gt=0).order_by("id").values_list(...).iterator().
# Why: the same GROUP BY, streamed with flat memory (the reconcile helper); the ORM's
# iterator would not let the aggregate run in parallel.
def wallet_chain_heads() -> Iterator[tuple[int, int, str]]:
    """(wallet id, entry count, stored chain head) of every wallet with entries, by wallet id."""
    wallet, ledger = _quote(Wallet._meta.db_table), _quote(LedgerEntry._meta.db_table)
    sql = (
        f"SELECT w.id, c.n, w.chain_head FROM {wallet} w JOIN (SELECT wallet_id, count(*) AS n FROM {ledger} "  # noqa: S608
        "GROUP BY wallet_id) c ON c.wallet_id = w.id ORDER BY w.id"
    )
    return _stream(sql, [])
