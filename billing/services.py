"""Writes to the credit ledger: the only place a balance changes.

Every function here that moves credits:

1. runs inside `transaction.atomic()` (`service_atomic()`: a savepoint in a
   caller's transaction, except in the API's request transaction, which it
   joins, since a failure there ends the whole transaction anyway);
2. locks exactly one wallet row with `SELECT ... FOR NO KEY UPDATE` (`OF`
   the wallet only, when the same statement reads the daily limit), which
   serialises all changes to that wallet;
3. decides from the locked row, never from a cache;
4. updates the stored balance and inserts the ledger entry, both or neither.

Between the lock and the commit there is no network call and no heavy
Python: a wallet is only as fast as its lock is short. Checks that do not
need the lock (amount format, account status) run before it is taken.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.exceptions import AccountSuspended
from accounts.models import Account, ApiKey
from billing.balance_cache import balance_cache_invalidate
from billing.exceptions import (
    AmountTooLarge,
    DailyLimitExceeded,
    HoldNotPending,
    InsufficientCredits,
    InvalidAmount,
    InvalidExpiresIn,
    InvalidGrantTerms,
    SubscriptionConflict,
)
from billing.models import (
    AllowanceGrant,
    CreditLot,
    DailyLimitOverride,
    DailyUsage,
    Hold,
    LedgerEntry,
    Plan,
    Subscription,
    Wallet,
)
from config import metrics
from config.atomic import service_atomic
from config.errors import InvalidRequest
from config.money import MONEY_DIGITS, MONEY_PLACES
from config.rows import row_get, row_update, row_update_then_insert
from pricing.models import CreditType

if TYPE_CHECKING:
    from pricing.services import Quote

# NUMERIC(28, 9) holds values below 10**19; refuse anything that would not fit.
BALANCE_CEILING = Decimal(10) ** (MONEY_DIGITS - MONEY_PLACES)


@dataclass(frozen=True)
class Actor:
    """Who caused a ledger entry: an API key, a staff user, or the system (neither)."""

    api_key: ApiKey | None = None
    user: Any | None = None  # settings.AUTH_USER_MODEL

    @classmethod
    def system(cls) -> Actor:
        return cls()


def amount_validate(amount: Any, credit_type: CreditType) -> Decimal:
    """A finite, positive Decimal with no more places than the credit type's scale."""
    if isinstance(amount, float | bool) or not isinstance(amount, Decimal | int | str):
        raise InvalidAmount('Amount must be a decimal string such as "12.50".')
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount() from exc
    if not value.is_finite():
        raise InvalidAmount("Amount must be finite.")
    if value <= 0:
        raise InvalidAmount("Amount must be greater than zero.")
    if value >= BALANCE_CEILING:
        raise InvalidAmount("Amount is too large.")
    if value != value.quantize(credit_type.quantum):  # "1.50" is fine at scale 1; "1.55" is not
        raise InvalidAmount(f"Amount has more than {credit_type.scale} decimal places allowed for {credit_type.code}.")
    return value.quantize(credit_type.quantum)


# The wallet lock statement, as Django's `select_for_update(no_key=True)`
# compiles it, cached per database vendor: compiling the ORM query cost more
# client CPU (~0.7 ms) than running it, on every money movement (README
# "Performance"). The SQL is Django's own, so it is exactly what the ORM would
# send: `SELECT <wallet columns> ... WHERE account_id = %s AND credit_type_id =
# %s FOR NO KEY UPDATE` on PostgreSQL.
_WALLET_LOCK_STATEMENTS: dict[str, tuple[str, tuple[int, int]]] = {}
_ACCOUNT_MARK, _CREDIT_TYPE_MARK = -7001, -7002


def _wallet_lock_statement() -> tuple[str, tuple[int, int]]:
    """(sql, positions of account_id and credit_type_id among its parameters)."""
    cached = _WALLET_LOCK_STATEMENTS.get(connection.vendor)
    if cached is None:
        queryset = Wallet.objects.select_for_update(no_key=True).filter(
            account_id=_ACCOUNT_MARK, credit_type_id=_CREDIT_TYPE_MARK
        )
        sql, params = queryset.query.get_compiler(connection=connection).as_sql()
        positions = (list(params).index(_ACCOUNT_MARK), list(params).index(_CREDIT_TYPE_MARK))
        cached = _WALLET_LOCK_STATEMENTS[connection.vendor] = (sql, positions)
    return cached


_WALLET_FIELDS = [f.attname for f in Wallet._meta.concrete_fields]


def _wallet_select_for_update(*, account_id: int, credit_type_id: int) -> Wallet | None:
    """The locked wallet row as a model instance (only that row: no join)."""
    if connection.vendor != "postgresql":
        # SQLite (`make run`) has no row locks (IMMEDIATE transactions
        # serialise writers) and needs the ORM's converters: its raw cursor
        # returns NUMERIC columns as floats.
        return (
            Wallet.objects.select_for_update(no_key=True)
            .filter(account_id=account_id, credit_type_id=credit_type_id)
            .first()
        )
    sql, (account_at, credit_type_at) = _wallet_lock_statement()
    params: list[int] = [0, 0]
    params[account_at], params[credit_type_at] = account_id, credit_type_id
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else Wallet.from_db(connection.alias, _WALLET_FIELDS, row)


# The daily limit in force for (w.account_id, w.credit_type_id): the account's
# override if any, else its live subscription's plan. Shared by the debit lock
# and `daily_limit_get`; columns as `_daily_limit_from` takes them.
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
    quote = connection.ops.quote_name
    # Only the models' own table names and status constants: no input reaches this string.
    return _LIMIT_JOINS.format(
        override=quote(DailyLimitOverride._meta.db_table),
        subscription=quote(Subscription._meta.db_table),
        plan=quote(Plan._meta.db_table),
        live=", ".join(f"'{status}'" for status in Subscription.LIVE_STATUSES),
    )


# The debit paths (charges, holds) need the wallet locked and the account's
# daily limit: one statement does both, so a charge makes one round trip
# before its writes instead of two. `FOR NO KEY UPDATE OF w` locks the wallet
# row only; the limit tables are read, not locked, in the same snapshot.
_WALLET_LOCK_WITH_LIMIT: str | None = None


def _wallet_lock_with_limit_sql() -> str:
    global _WALLET_LOCK_WITH_LIMIT
    if _WALLET_LOCK_WITH_LIMIT is None:
        quote = connection.ops.quote_name
        columns = ", ".join(f"w.{quote(f.column)}" for f in Wallet._meta.concrete_fields)
        _WALLET_LOCK_WITH_LIMIT = (
            f"SELECT {columns}, {_LIMIT_COLUMNS} FROM {quote(Wallet._meta.db_table)} w {_limit_joins()}"  # noqa: S608
            "WHERE w.account_id = %s AND w.credit_type_id = %s FOR NO KEY UPDATE OF w"
        )
    return _WALLET_LOCK_WITH_LIMIT


def _wallet_select_for_debit(*, account_id: int, credit_type_id: int) -> tuple[Wallet | None, tuple | None]:
    """The locked wallet row and the raw daily-limit columns (see `_daily_limit_from`)."""
    with connection.cursor() as cursor:
        cursor.execute(_wallet_lock_with_limit_sql(), [account_id, credit_type_id])
        row = cursor.fetchone()
    if row is None:
        return None, None
    width = len(_WALLET_FIELDS)
    return Wallet.from_db(connection.alias, _WALLET_FIELDS, row[:width]), row[width:]


def wallet_lock_for_debit(*, account: Account, credit_type: CreditType) -> tuple[Wallet | None, Decimal | None]:
    """Lock the wallet (as `wallet_lock`) and read the account's daily limit: (wallet, limit or None).

    The limit is read by the locking statement, as of that statement's
    snapshot: a limit changed while this debit waited for the lock applies
    from the next one (either order is a valid history). What was spent today
    is not read here: `daily_usage_add` counts it with its own statement,
    after the lock, so concurrent debits can never overshoot the limit.
    """
    if connection.vendor != "postgresql":
        wallet = wallet_lock(account=account, credit_type=credit_type)
        return wallet, daily_limit_get(account=account, credit_type=credit_type)
    wallet, limit_row = _wallet_select_for_debit(account_id=account.pk, credit_type_id=credit_type.pk)
    if wallet is None:
        return None, None
    wallet.account = account
    wallet.credit_type = credit_type
    return wallet, _daily_limit_from(*limit_row)


def wallet_lock(*, account: Account, credit_type: CreditType, create: bool = False) -> Wallet | None:
    """Lock and return the wallet row; with create=True make it first if missing.

    Must be called inside a transaction. Only the wallet row is locked.
    """
    wallet = _wallet_select_for_update(account_id=account.pk, credit_type_id=credit_type.pk)
    if wallet is None and create:
        # Two first grants may race to create the wallet: the unique constraint
        # lets one insert win and the other do nothing; both then lock it.
        Wallet.objects.bulk_create(
            [Wallet(account_id=account.pk, credit_type_id=credit_type.pk)], ignore_conflicts=True
        )
        wallet = _wallet_select_for_update(account_id=account.pk, credit_type_id=credit_type.pk)
    if wallet is not None:
        wallet.account = account
        wallet.credit_type = credit_type
    return wallet


def wallet_changed(wallet: Wallet, *, entry: LedgerEntry | None = None) -> None:
    """Call after any change to a wallet's balance or held amount, inside the transaction.

    Registers the after-commit side effects of a wallet change (display-cache
    invalidation, metrics). Nothing here may touch the network before commit,
    and nothing here may fail the change: the callbacks swallow and log their
    own errors (a Redis outage must never break a charge).
    """
    transaction.on_commit(partial(balance_cache_invalidate, account=wallet.account.public_id), robust=True)
    if entry is not None:
        transaction.on_commit(
            partial(
                metrics.ledger_entry_committed,
                kind=entry.kind,
                credit_type=wallet.credit_type.code,
                amount=entry.amount,
                scale=wallet.credit_type.scale,
            ),
            robust=True,
        )


def _append_entry(
    *,
    wallet: Wallet,
    kind: str,
    amount: Decimal,
    actor: Actor,
    idempotency_key: str = "",
    task_id: str = "",
    route: str = "",
    description: str = "",
    metadata: dict | None = None,
    related_entry: LedgerEntry | None = None,
    pricing: dict | None = None,
    held: Decimal | None = None,
) -> LedgerEntry:
    """Apply a signed amount to a locked wallet and record it. Caller checked the bounds.

    `pricing` holds the ledger's pricing columns (`Quote.ledger_fields()`).
    With `held`, the wallet's held amount is set in the same UPDATE: a
    capture frees its hold and charges in one statement (the CHECK held <=
    balance holds for the row as the statement leaves it).
    """
    new_balance = wallet.balance + amount
    if new_balance < 0:  # pragma: no cover - callers check first; the CHECK constraint is the backstop
        raise InsufficientCredits(available=wallet.available, required=-amount)
    if new_balance >= BALANCE_CEILING:
        raise AmountTooLarge()
    now = timezone.now()
    _lots_debit(wallet=wallet, kind=kind, amount=-amount)
    entry = LedgerEntry(
        wallet=wallet,
        account=wallet.account,
        credit_type=wallet.credit_type,
        kind=kind,
        amount=amount,
        balance_after=new_balance,
        related_entry=related_entry,
        idempotency_key=idempotency_key,
        task_id=task_id,
        route=route,
        description=description,
        metadata=metadata or {},
        actor_api_key=actor.api_key,
        actor_user=actor.user,
        **(pricing or {}),
    )
    # The wallet's UPDATE and the entry's INSERT in one statement (one round trip under the lock).
    changes = (
        {"balance": new_balance, "updated_at": now}
        if held is None
        else {"balance": new_balance, "held": held, "updated_at": now}
    )
    row_update_then_insert(Wallet, wallet.pk, changes, entry)
    wallet.balance = new_balance
    if held is not None:
        wallet.held = held
    wallet.updated_at = now
    wallet_changed(wallet, entry=entry)
    return entry


def grant_create(
    *,
    account: Account,
    credit_type: CreditType,
    amount: Decimal | str,
    actor: Actor,
    reason: str = "",
    task_id: str = "",
    metadata: dict | None = None,
    idempotency_key: str = "",
    expires_at: datetime | None = None,
    priority: int = 0,
) -> LedgerEntry:
    """Add credits to the account's wallet, creating the wallet if needed.

    With an `expires_at` or a non-zero `priority` the credits form their own
    lot (consumed by priority, then soonest expiry; see `_lots_debit`).
    """
    value = amount_validate(amount, credit_type)
    grant_terms_validate(priority=priority, expires_at=expires_at)
    with service_atomic():
        wallet = wallet_lock(account=account, credit_type=credit_type, create=True)
        entry = _append_entry(
            wallet=wallet,
            kind=LedgerEntry.Kind.GRANT,
            amount=value,
            actor=actor,
            description=reason,
            task_id=task_id,
            metadata=metadata,
            idempotency_key=idempotency_key,
        )
        _lot_create(wallet=wallet, entry=entry, priority=priority, expires_at=expires_at)
        return entry


def charge_create(
    *,
    account: Account,
    credit_type: CreditType,
    amount: Decimal | str | None = None,
    actor: Actor,
    task_id: str = "",
    route: str = "",
    description: str = "",
    metadata: dict | None = None,
    idempotency_key: str = "",
    quote: Quote | None = None,
) -> LedgerEntry:
    """Take credits for one action, or raise InsufficientCredits and change nothing.

    With a `quote` (from `pricing.services.price_quote`, computed before this
    call so no pricing work happens under the wallet lock) the amount is the
    quote's, and the entry records the key, price version and usage.
    """
    if quote is not None:
        if quote.credit_type.pk != credit_type.pk:
            raise InvalidAmount("The quote is in another credit type.")
        if amount is not None and Decimal(amount) != quote.amount:
            raise InvalidAmount("The amount does not match the quote.")
        amount = quote.amount
    value = amount_validate(amount, credit_type)
    if not account.is_active:
        raise AccountSuspended()
    with service_atomic():
        wallet, daily_limit = wallet_lock_for_debit(account=account, credit_type=credit_type)
        available = wallet.available if wallet is not None else Decimal(0)
        if wallet is None or available < value:
            raise InsufficientCredits(available=available, required=value)
        daily_usage_add(wallet=wallet, amount=value, limit=daily_limit)
        return _append_entry(
            wallet=wallet,
            kind=LedgerEntry.Kind.CHARGE,
            amount=-value,
            actor=actor,
            task_id=task_id,
            route=route,
            description=description,
            metadata=metadata,
            idempotency_key=idempotency_key,
            pricing=quote.ledger_fields() if quote is not None else None,
        )


def adjustment_create(
    *,
    account: Account,
    credit_type: CreditType,
    amount: Decimal | str,
    actor: Actor,
    reason: str,
    metadata: dict | None = None,
) -> LedgerEntry:
    """A staff correction: a signed amount with a mandatory reason.

    A negative adjustment may not take the balance below what pending holds
    reserve (the database refuses it anyway).
    """
    if not reason.strip():
        raise InvalidAmount("An adjustment needs a reason.")
    signed = Decimal(amount) if isinstance(amount, str | int | Decimal) else amount
    if not isinstance(signed, Decimal) or not signed.is_finite() or signed == 0:
        raise InvalidAmount("Adjustment must be a non-zero decimal.")
    magnitude = amount_validate(abs(signed), credit_type)
    value = magnitude if signed > 0 else -magnitude
    with service_atomic():
        wallet = wallet_lock(account=account, credit_type=credit_type, create=True)
        if value < 0 and wallet.available < -value:
            raise InsufficientCredits(available=wallet.available, required=-value)
        return _append_entry(
            wallet=wallet,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=value,
            actor=actor,
            description=reason,
            metadata=metadata,
        )


def ledger_entry_append(
    *,
    wallet: Wallet,
    kind: str,
    amount: Decimal,
    actor: Actor,
    related_entry: LedgerEntry | None = None,
    **fields: Any,
) -> LedgerEntry:
    """For sibling services (refunds): apply and record a signed amount on a wallet.

    The caller must hold the wallet's lock (`wallet_lock`) in the current
    transaction and have checked the bounds; see `_append_entry`.
    """
    return _append_entry(wallet=wallet, kind=kind, amount=amount, actor=actor, related_entry=related_entry, **fields)


# --- holds -----------------------------------------------------------------
#
# A hold reserves credits for a job whose final cost is not known yet. Every
# transition locks the wallet first (the same single lock as charges), then
# re-reads the hold: whoever comes second sees the first one's committed
# status. The move out of `pending` is also a conditional UPDATE whose row
# count is checked, so even a writer that skipped the wallet lock could not
# resolve a hold twice. Lock order is always wallet, then hold: no deadlocks
# between capture, release and the expiry sweep.

logger = logging.getLogger(__name__)


def hold_expires_at(expires_in: int | None, *, now: datetime | None = None) -> datetime:
    """When a hold created now with `expires_in` seconds expires (default and ceiling from settings)."""
    maximum = settings.CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S
    if expires_in is None:
        expires_in = settings.CREDITLEDGER_HOLD_DEFAULT_EXPIRES_IN_S
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= maximum:
        raise InvalidExpiresIn(f"expires_in must be a whole number of seconds from 1 to {maximum}.")
    return (now or timezone.now()) + timedelta(seconds=expires_in)


def capture_amount_validate(amount: Any, credit_type: CreditType) -> Decimal:
    """Like `amount_validate`, but zero is allowed: a job that used nothing captures 0."""
    if isinstance(amount, Decimal | int | str) and not isinstance(amount, bool):
        try:
            if Decimal(amount) == 0:
                return Decimal(0).quantize(credit_type.quantum)
        except (InvalidOperation, ValueError):
            pass
    return amount_validate(amount, credit_type)


def hold_create(
    *,
    account: Account,
    credit_type: CreditType,
    actor: Actor,
    amount: Decimal | str | None = None,
    expires_in: int | None = None,
    on_expiry: str = Hold.OnExpiry.RELEASE,
    task_id: str = "",
    route: str = "",
    metadata: dict | None = None,
    price_key: str = "",
    estimated_usage: dict | None = None,
    price_version: str = "",
    idempotency_key: str = "",
) -> Hold:
    """Reserve credits of the wallet's available balance, or raise InsufficientCredits (402).

    The amount is `amount`, or `estimated_usage` priced by the catalogue with
    `price_key`. A hold with a price key can later be captured by `usage`.
    """
    if amount is None:
        if not price_key or estimated_usage is None:
            raise InvalidRequest("Give amount, or price_key with estimated_usage.")
        amount, price_version, _, _ = _price(key=price_key, usage=estimated_usage, credit_type=credit_type)
    elif price_key:
        # An explicit amount with a price key: the key must be priced now, or
        # its capture by usage would only fail once the job is done.
        _, price_version, _, _ = _price(key=price_key, usage={}, credit_type=credit_type)
    value = amount_validate(amount, credit_type)
    if on_expiry not in Hold.OnExpiry.values:
        raise InvalidRequest("on_expiry must be 'release' or 'capture'.")
    if not account.is_active:
        raise AccountSuspended()
    now = timezone.now()
    expires_at = hold_expires_at(expires_in, now=now)
    with service_atomic():
        wallet, daily_limit = wallet_lock_for_debit(account=account, credit_type=credit_type)
        available = wallet.available if wallet is not None else Decimal(0)
        if wallet is None or available < value:
            raise InsufficientCredits(available=available, required=value)
        daily_usage_add(wallet=wallet, amount=value, limit=daily_limit, now=now)
        hold = Hold(
            wallet=wallet,
            account=account,
            credit_type=credit_type,
            amount=value,
            on_expiry=on_expiry,
            expires_at=expires_at,
            price_key=price_key,
            estimated_usage=estimated_usage,
            price_version=price_version,
            task_id=task_id,
            route=route,
            metadata=metadata or {},
            idempotency_key=idempotency_key,
            actor_api_key=actor.api_key,
            actor_user=actor.user,
        )
        new_held = wallet.held + value
        row_update_then_insert(Wallet, wallet.pk, {"held": new_held, "updated_at": now}, hold)
        wallet.held = new_held
        wallet_changed(wallet)
        transaction.on_commit(metrics.HOLDS.labels(event="created").inc, robust=True)
    return hold


def _hold_lock(hold: Hold) -> tuple[Wallet, Hold]:
    """Lock the hold's wallet, then re-read the hold: its status is now settled for this transaction."""
    wallet = wallet_lock(account=hold.account, credit_type=hold.credit_type)
    current = row_get(Hold, hold.pk)
    current.account, current.credit_type = wallet.account, wallet.credit_type
    return wallet, current


def _hold_resolve(
    *,
    wallet: Wallet,
    hold: Hold,
    status: str,
    captured: Decimal,
    actor: Actor,
    requested: Decimal | None = None,
    capture_usage: dict | None = None,
    price_version: str = "",
    pricing: dict | None = None,
    release_reason: str = "",
    metadata: dict | None = None,
    idempotency_key: str = "",
) -> Hold:
    """Move a pending hold (read under the wallet lock) to `status`, charging `captured`."""
    now = timezone.now()
    # The reservation is freed in the same UPDATE as the charge (or alone):
    # the charge may take the balance below the old held.
    new_held = wallet.held - hold.amount
    daily_usage_settle(wallet=wallet, reserved_at=hold.created_at, reserved=hold.amount, used=captured)
    entry = None
    if captured > 0:
        entry = _append_entry(
            wallet=wallet,
            kind=LedgerEntry.Kind.CHARGE,
            amount=-captured,
            actor=actor,
            task_id=hold.task_id,
            route=hold.route,
            description=f"{'Expiry capture' if status == Hold.Status.EXPIRED else 'Capture'} of {hold.public_id}",
            metadata={**hold.metadata, **(metadata or {}), "hold": hold.public_id},
            idempotency_key=idempotency_key,
            held=new_held,
            **({"pricing": pricing} if pricing else {}),
        )
    else:
        row_update(Wallet, wallet.pk, held=new_held, updated_at=now)
        wallet.held = new_held
        wallet_changed(wallet)
    changes = {
        "status": status,
        "captured_amount": captured,
        "requested_amount": requested,
        "capture_entry": entry,
        "resolved_at": now,
        "release_reason": release_reason,
        "capture_usage": capture_usage,
        "price_version": price_version or hold.price_version,
    }
    claimed = row_update(Hold, hold.pk, where={"status": Hold.Status.PENDING}, **changes)
    if claimed != 1:  # pragma: no cover - the wallet lock already excludes this; raising rolls everything back
        raise HoldNotPending(hold_id=hold.public_id, status=Hold.objects.get(pk=hold.pk).status)
    for field, value in changes.items():
        setattr(hold, field, value)
    transaction.on_commit(metrics.HOLDS.labels(event=status).inc, robust=True)
    return hold


def hold_capture(
    *,
    hold: Hold,
    actor: Actor,
    amount: Decimal | str | None = None,
    usage: dict | None = None,
    metadata: dict | None = None,
    idempotency_key: str = "",
) -> Hold:
    """Charge the final cost of a held job and free the rest of the hold.

    The cost is `amount`, or `usage` priced by the catalogue with the hold's
    price key. It may exceed the hold: the extra comes from the wallet's
    available credits. If even that is not enough, the capture takes what
    there is (held + available) rather than nothing, and records the
    requested amount: the usage has happened, and refusing would let the
    hold expire or be released with less revenue still. Capturing a hold
    already captured with the same amount returns it unchanged; any other
    transition of a resolved hold raises HoldNotPending (409).
    """
    if (amount is None) == (usage is None):
        raise InvalidRequest("Give either amount or usage.")
    price_version, pricing, quote = "", None, None
    if usage is not None:
        requested, price_version, pricing, quote = _hold_price(hold=hold, usage=usage)
    else:
        requested = capture_amount_validate(amount, hold.credit_type)
    with service_atomic():
        wallet, current = _hold_lock(hold)
        if current.status != Hold.Status.PENDING:
            if current.status == Hold.Status.CAPTURED and current.requested_amount == requested:
                return current
            raise HoldNotPending(hold_id=current.public_id, status=current.status)
        if quote is not None and quote.anomaly:
            # A paid key captured at zero usage: the classic way streamed
            # usage is given away. It settles (the job is over), but is
            # recorded and reported like a zero-cost charge.
            from pricing.services import zero_cost_charge_record

            zero_cost_charge_record(
                quote=quote,
                account=current.account,
                task_id=current.task_id,
                route=current.route,
                idempotency_key=idempotency_key,
            )
        captured = min(requested, current.amount + wallet.available)
        if captured < requested:
            shortfall = requested - captured
            hold_id = current.public_id
            transaction.on_commit(
                lambda: logger.warning("hold %s captured short by %s: wallet could not cover it", hold_id, shortfall)
            )
        return _hold_resolve(
            wallet=wallet,
            hold=current,
            status=Hold.Status.CAPTURED,
            captured=captured,
            requested=requested,
            capture_usage=usage,
            price_version=price_version,
            pricing=pricing,
            actor=actor,
            metadata=metadata,
            idempotency_key=idempotency_key,
        )


def _price(*, key: str, usage: dict, credit_type: CreditType) -> tuple[Decimal, str, dict, Any]:
    """Price usage with the catalogue (outside any lock): amount, price reference, ledger pricing columns, quote."""
    # Imported late: the pricing app builds on billing, not the reverse.
    from pricing.exceptions import InvalidUsage
    from pricing.services import USAGE_FIELDS, Usage, price_quote

    if not isinstance(usage, dict) or set(usage) - set(USAGE_FIELDS):
        raise InvalidUsage(f"usage may only have the fields {', '.join(USAGE_FIELDS)}.", param="usage")
    quote = price_quote(key=key, usage=Usage(**usage), credit_type=credit_type)
    return capture_amount_validate(quote.amount, credit_type), quote.price_ref[:64], quote.ledger_fields(), quote


def _hold_price(*, hold: Hold, usage: dict) -> tuple[Decimal, str, dict, Any]:
    if not hold.price_key:
        raise InvalidRequest("This hold has no price key: capture it with an amount.")
    return _price(key=hold.price_key, usage=usage, credit_type=hold.credit_type)


def hold_release(*, hold: Hold, actor: Actor, reason: str = "") -> Hold:
    """Free a pending hold without charging. Releasing a released hold returns it unchanged."""
    with service_atomic():
        wallet, current = _hold_lock(hold)
        if current.status != Hold.Status.PENDING:
            if current.status == Hold.Status.RELEASED:
                return current
            raise HoldNotPending(hold_id=current.public_id, status=current.status)
        return _hold_resolve(
            wallet=wallet,
            hold=current,
            status=Hold.Status.RELEASED,
            captured=Decimal(0),
            release_reason=reason,
            actor=actor,
        )


def hold_expire(*, hold: Hold, now: datetime | None = None) -> Hold | None:
    """Apply the hold's `on_expiry` if it is still pending and due; None if someone else resolved it.

    `on_expiry=capture` charges the whole held amount, which the wallet always
    covers: a pending hold's amount is part of `held`, and held <= balance.
    """
    now = now or timezone.now()
    with service_atomic():
        wallet, current = _hold_lock(hold)
        if current.status != Hold.Status.PENDING or current.expires_at > now:
            return None
        captured = current.amount if current.on_expiry == Hold.OnExpiry.CAPTURE else Decimal(0)
        return _hold_resolve(
            wallet=wallet,
            hold=current,
            status=Hold.Status.EXPIRED,
            captured=captured,
            requested=captured if captured else None,
            actor=Actor.system(),
        )


def _sweep(queryset, apply, *, batch_size: int) -> int:
    """Apply `apply` to every row of `queryset`, in pk-keyset batches; count the non-None results.

    Keyset paging (not OFFSET) so rows that stay due, or that another worker
    resolved and `apply` skipped, are not read again in this run. Each `apply`
    is its own transaction under its wallet's lock: safe in several workers.
    """
    done = 0
    last_pk = 0
    while True:
        batch = list(queryset.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
        done += sum(1 for row in batch if apply(row) is not None)
        if len(batch) < batch_size:
            return done
        last_pk = batch[-1].pk


def holds_expire_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire every pending hold due by `now`, one transaction per hold; how many this call expired.

    Safe to run in several workers at once: each hold is resolved under its
    wallet's lock after re-reading its status, so a hold another worker (or
    a capture) got to first is skipped.
    """
    now = now or timezone.now()
    due = Hold.objects.filter(status=Hold.Status.PENDING, expires_at__lte=now).select_related("account", "credit_type")
    return _sweep(due, lambda hold: hold_expire(hold=hold, now=now), batch_size=batch_size)


# --- grant lots: priority and expiry -----------------------------------------
#
# A grant with a priority or an expiry gets a CreditLot; any other credit
# joins the wallet's plain pool (balance - lot_balance), which has no row.
# Debits take lots in order: priority (higher first), then soonest expiry
# (never-expiring last), then oldest; the pool stands where a priority-0,
# never-expiring lot would. Because most wallets have no lots, a debit reads
# `lot_balance` from the already-locked wallet row and, when it is zero,
# touches no lot table at all. Refunds and positive adjustments return
# credits to the pool (they never expire). Every lot change happens under the
# wallet lock, so lots need no lock of their own.

LOT_PRIORITY_MIN = -1000
LOT_PRIORITY_MAX = 1000


def grant_terms_validate(*, priority: int, expires_at: datetime | None) -> None:
    """A priority in range and, if given, a timezone-aware expiry."""
    in_range = isinstance(priority, int) and not isinstance(priority, bool) and LOT_PRIORITY_MIN <= priority
    if not in_range or priority > LOT_PRIORITY_MAX:
        raise InvalidGrantTerms(f"priority must be a whole number from {LOT_PRIORITY_MIN} to {LOT_PRIORITY_MAX}.")
    if expires_at is not None and (not isinstance(expires_at, datetime) or timezone.is_naive(expires_at)):
        raise InvalidGrantTerms("expires_at must be a timezone-aware datetime.")


def _lot_balance_set(wallet: Wallet, value: Decimal) -> None:
    Wallet.objects.filter(pk=wallet.pk).update(lot_balance=value)
    wallet.lot_balance = value


def _lot_create(*, wallet: Wallet, entry: LedgerEntry, priority: int, expires_at: datetime | None) -> CreditLot | None:
    """Give a just-recorded grant its own lot if it has a priority or an expiry (wallet locked)."""
    if priority == 0 and expires_at is None:
        return None
    lot = CreditLot(
        account_id=wallet.account_id,
        wallet=wallet,
        entry=entry,
        amount=entry.amount,
        remaining=entry.amount,
        priority=priority,
        expires_at=expires_at,
    )
    lot.save(force_insert=True)
    # After the balance update in _append_entry: CHECK (lot_balance <= balance) holds at every statement.
    _lot_balance_set(wallet, wallet.lot_balance + entry.amount)
    return lot


def _lot_before_pool(lot: CreditLot) -> bool:
    return lot.priority > 0 or (lot.priority == 0 and lot.expires_at is not None)


def _lots_debit(*, wallet: Wallet, kind: str, amount: Decimal) -> None:
    """Take a debit of `amount` (positive) from the wallet's lots in consumption order.

    Called by `_append_entry` for every negative entry except expiries (which
    drain one named lot), before the balance is updated. No query at all when
    the locked wallet has nothing in lots.
    """
    if kind == LedgerEntry.Kind.EXPIRY or amount <= 0 or not wallet.lot_balance:
        return
    pool = wallet.balance - wallet.lot_balance
    lots = list(
        CreditLot.objects.filter(wallet_id=wallet.pk, remaining__gt=0)
        .order_by("-priority", F("expires_at").asc(nulls_last=True), "id")
        .only("id", "remaining", "priority", "expires_at")
    )
    left = amount
    taken = Decimal(0)
    changed: list[CreditLot] = []

    def take_from(lot_list: list[CreditLot]) -> None:
        nonlocal left, taken
        for lot in lot_list:
            if left <= 0:
                return
            part = min(lot.remaining, left)
            lot.remaining -= part
            left -= part
            taken += part
            changed.append(lot)

    take_from([lot for lot in lots if _lot_before_pool(lot)])
    left -= min(pool, left)
    take_from([lot for lot in lots if not _lot_before_pool(lot)])
    if changed:
        CreditLot.objects.bulk_update(changed, ["remaining"])
        _lot_balance_set(wallet, wallet.lot_balance - taken)


def lot_expire(*, lot: CreditLot, now: datetime | None = None) -> LedgerEntry | None:
    """Write the `expiry` entry for what is left of a due lot; None if nothing (more) to expire.

    Expires only what is not held: if pending holds reserve part of the
    wallet, the lot gives up at most `available`, and the rest stays in the
    (past-due, so first-consumed) lot until the holds resolve and a later
    sweep expires it. Idempotent: a second run finds `remaining` at zero.
    """
    now = now or timezone.now()
    if lot.expires_at is None or lot.expires_at > now:
        return None
    wallet_row = Wallet.objects.select_related("account", "credit_type").get(pk=lot.wallet_id)
    grant_entry = LedgerEntry.objects.only("id", "public_id").get(pk=lot.entry_id)
    with transaction.atomic():
        wallet = wallet_lock(account=wallet_row.account, credit_type=wallet_row.credit_type)
        # Re-read under the wallet lock: every lot change holds that lock.
        remaining = CreditLot.objects.filter(pk=lot.pk).values_list("remaining", flat=True).get()
        amount = min(remaining, wallet.available)
        if amount <= 0:
            return None
        CreditLot.objects.filter(pk=lot.pk).update(remaining=remaining - amount)
        lot.remaining = remaining - amount
        _lot_balance_set(wallet, wallet.lot_balance - amount)
        return _append_entry(
            wallet=wallet,
            kind=LedgerEntry.Kind.EXPIRY,
            amount=-amount,
            actor=Actor.system(),
            related_entry=grant_entry,
            description="Unused grant credits expired",
            metadata={"lot": lot.pk, "expires_at": lot.expires_at.isoformat()},
        )


def grants_expire_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire every lot due by `now`, one short transaction per lot; how many expiry entries were written.

    Safe to run twice or in two workers at once: each lot is re-read under
    its wallet's lock, and one that is already drained writes nothing.
    """
    now = now or timezone.now()
    due = CreditLot.objects.filter(remaining__gt=0, expires_at__lte=now).only(
        "id", "wallet_id", "entry_id", "expires_at"
    )
    return _sweep(due, lambda lot: lot_expire(lot=lot, now=now), batch_size=batch_size)


# --- daily limits --------------------------------------------------------------
#
# The limit is resolved before the wallet lock (it is configuration, not
# money); the day's usage is counted under the lock in the charge's own
# transaction with one upsert, so concurrent charges are serialised by the
# wallet lock and cannot overshoot. The counter is keyed by the calendar day
# in CREDITLEDGER_DAILY_LIMIT_TIMEZONE: a new day is a new row, and no job
# ever resets anything. Usage is counted only while a limit applies.

_DAILY_USAGE_UPSERT = """
INSERT INTO {table} (account_id, wallet_id, day, used) VALUES (%s, %s, %s, %s)
ON CONFLICT (account_id, wallet_id, day) DO UPDATE SET used = {table}.used + EXCLUDED.used
RETURNING used
"""


def daily_limit_timezone() -> ZoneInfo:
    return ZoneInfo(settings.CREDITLEDGER_DAILY_LIMIT_TIMEZONE)


def daily_limit_day(now: datetime | None = None) -> date:
    """The calendar day that `now` falls on in the daily-limit time zone."""
    return timezone.localtime(now or timezone.now(), daily_limit_timezone()).date()


def _daily_limit_sql() -> str:
    # Raw SQL because this ran on every charge and hold before the debit lock
    # read the limit itself: compiling the equivalent ORM query (an Exists and
    # four Subqueries) cost more client CPU than the rest of the charge.
    return (
        f"SELECT {_LIMIT_COLUMNS} FROM (SELECT %(account)s::bigint AS account_id, "  # noqa: S608 - our names only
        f"%(credit_type)s::bigint AS credit_type_id) w {_limit_joins()}"
    )


_DAILY_LIMIT_SQL: str | None = None


def daily_limit_get(*, account: Account, credit_type: CreditType) -> Decimal | None:
    """The daily limit on this account's spending of `credit_type`, or None.

    The account's override if it has one (an empty override means none);
    else its live subscription's plan, with the trial or the paid figure
    chosen by the subscription's status alone; else no limit. One query.
    """
    global _DAILY_LIMIT_SQL
    if connection.vendor == "postgresql":
        if _DAILY_LIMIT_SQL is None:
            _DAILY_LIMIT_SQL = _daily_limit_sql()
        with connection.cursor() as cursor:
            cursor.execute(_DAILY_LIMIT_SQL, {"account": account.pk, "credit_type": credit_type.pk})
            return _daily_limit_from(*cursor.fetchone())
    else:  # SQLite for `make run`: the ORM, which converts its decimals
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
            .first()
        )
    if row is None:
        return None
    return _daily_limit_from(
        row["has_override"], row["override"], row["plan_status"], row["paid_limit"], row["trial_limit"]
    )


def _daily_limit_from(
    has_override: bool, override: Decimal | None, plan_status: str | None, paid: Decimal | None, trial: Decimal | None
) -> Decimal | None:
    """The override if there is one (empty: no limit); else the live plan's trial or paid figure, by status alone."""
    if has_override:
        return override
    if plan_status is None:
        return None
    return trial if Subscription.status_is_trial(plan_status) else paid


def daily_usage_add(*, wallet: Wallet, amount: Decimal, limit: Decimal | None, now: datetime | None = None) -> None:
    """Count `amount` against today's usage of the locked wallet, or raise DailyLimitExceeded.

    Must run under the wallet lock inside the debit's transaction: raising
    rolls the increment back with everything else.
    """
    if limit is None:
        return
    now = now or timezone.now()
    day = daily_limit_day(now)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _DAILY_USAGE_UPSERT.format(table=DailyUsage._meta.db_table), [wallet.account_id, wallet.pk, day, amount]
            )
            used = cursor.fetchone()[0]
    else:  # SQLite for `make run`: writers are already serialised (IMMEDIATE transactions).
        usage, _ = DailyUsage.objects.get_or_create(
            wallet_id=wallet.pk, day=day, defaults={"account_id": wallet.account_id}
        )
        used = usage.used + amount
        DailyUsage.objects.filter(pk=usage.pk).update(used=used)
    if used > limit:
        resets_at = datetime.combine(day + timedelta(days=1), time.min, tzinfo=daily_limit_timezone())
        raise DailyLimitExceeded(remaining=limit - (used - amount), required=amount, resets_at=resets_at.isoformat())


def daily_usage_settle(*, wallet: Wallet, reserved_at: datetime, reserved: Decimal, used: Decimal) -> None:
    """A hold resolved: replace its reservation on the day it was made by what it actually used.

    A hold counts its whole amount against the limit when it is created (so
    concurrent holds cannot overshoot either); capture, release and expiry
    correct that day's figure and never refuse (the work is done). Only a day
    that has a row (a limit applied that day) is corrected; never below zero.
    """
    delta = used - reserved
    if not delta:
        return
    DailyUsage.objects.filter(wallet_id=wallet.pk, day=daily_limit_day(reserved_at)).update(
        used=Greatest(F("used") + delta, Value(Decimal(0)))
    )


def daily_usage_get(*, wallet: Wallet, now: datetime | None = None) -> Decimal:
    """What the wallet has spent today (counted only while a limit applied)."""
    used = DailyUsage.objects.filter(wallet=wallet, day=daily_limit_day(now)).values_list("used", flat=True).first()
    return used if used is not None else Decimal(0)


# --- plans and subscriptions ---------------------------------------------------


def period_add_month(start: datetime) -> datetime:
    """One calendar month later, clamped to the month's last day (Jan 31 -> Feb 28)."""
    month = start.month % 12 + 1
    year = start.year + (1 if start.month == 12 else 0)
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def _allowance_grant(*, subscription: Subscription, actor: Actor) -> AllowanceGrant | None:
    """Grant the subscription's current period allowance, unless that period already had it.

    The AllowanceGrant row is inserted first: its unique constraint on
    (subscription, period_start) makes a second grant for the same period
    fail (or wait for the first and then fail) before any credit moves.
    """
    amount = subscription.allowance
    record = AllowanceGrant(
        subscription=subscription,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        amount=amount,
    )
    try:
        with transaction.atomic():  # a savepoint: a duplicate leaves the caller's transaction usable
            record.save(force_insert=True)
    except IntegrityError:
        return None
    if amount > 0:
        plan = subscription.plan
        entry = grant_create(
            account=subscription.account,
            credit_type=plan.credit_type,
            amount=amount,
            actor=actor,
            reason=f"{'Trial' if subscription.is_trial else 'Monthly'} allowance: {plan.code}",
            metadata={"subscription": subscription.pk, "period_start": subscription.current_period_start.isoformat()},
            expires_at=subscription.current_period_end if plan.allowance_expires else None,
        )
        AllowanceGrant.objects.filter(pk=record.pk).update(entry=entry)
        record.entry = entry
    return record


def subscription_create(
    *,
    account: Account,
    plan: Plan,
    status: str = Subscription.Status.ACTIVE,
    actor: Actor | None = None,
    period_start: datetime | None = None,
    period_end: datetime | None = None,
    trial_end: datetime | None = None,
    stripe_customer_id: str = "",
    stripe_subscription_id: str = "",
    metadata: dict | None = None,
) -> Subscription:
    """Start a subscription and grant its first period's allowance (trial or paid, by status).

    The first period runs from `period_start` (default now) to `period_end`
    (default one calendar month later; e.g. a 14-day trial passes its end);
    later periods are calendar months from there.
    """
    if status not in Subscription.LIVE_STATUSES:
        raise InvalidRequest("A new subscription must be trialing, active or past_due.")
    if not plan.is_active:
        raise InvalidRequest("This plan takes no new subscriptions.")
    start = period_start or timezone.now()
    end = period_end or period_add_month(start)
    if end <= start:
        raise InvalidRequest("period_end must be after period_start.")
    subscription = Subscription(
        account=account,
        plan=plan,
        status=status,
        current_period_start=start,
        current_period_end=end,
        trial_end=trial_end,
        stripe_customer_id=stripe_customer_id,
        stripe_subscription_id=stripe_subscription_id,
        metadata=metadata or {},
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                subscription.save(force_insert=True)
        except IntegrityError as exc:
            raise SubscriptionConflict() from exc
        if status in Subscription.RENEWING_STATUSES:
            _allowance_grant(subscription=subscription, actor=actor or Actor.system())
    return subscription


def subscription_renew(
    *, subscription: Subscription, now: datetime | None = None, actor: Actor | None = None
) -> AllowanceGrant | None:
    """If the period has ended, move to the period containing `now` and grant its allowance once.

    Periods missed while renewals were not running are skipped, not granted
    retroactively. The move is claimed with a conditional update on the old
    period end, so of two concurrent renewals only one advances and grants;
    the AllowanceGrant constraint backs that up.
    """
    now = now or timezone.now()
    subscription = Subscription.objects.select_related("plan__credit_type", "account").get(pk=subscription.pk)
    if subscription.status not in Subscription.RENEWING_STATUSES or subscription.current_period_end > now:
        return None
    start, end = subscription.current_period_start, subscription.current_period_end
    while end <= now:
        start, end = end, period_add_month(end)
    with transaction.atomic():
        claimed = Subscription.objects.filter(
            pk=subscription.pk,
            status=subscription.status,
            current_period_end=subscription.current_period_end,
        ).update(current_period_start=start, current_period_end=end, updated_at=now)
        if claimed != 1:
            return None
        subscription.current_period_start, subscription.current_period_end = start, end
        return _allowance_grant(subscription=subscription, actor=actor or Actor.system())


def subscriptions_renew_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Renew every subscription whose period has ended; how many allowances this call granted."""
    now = now or timezone.now()
    due = Subscription.objects.filter(status__in=Subscription.RENEWING_STATUSES, current_period_end__lte=now).only("pk")
    return _sweep(
        due, lambda subscription: subscription_renew(subscription=subscription, now=now), batch_size=batch_size
    )


def subscription_status_set(
    *, subscription: Subscription, status: str, now: datetime | None = None, actor: Actor | None = None
) -> Subscription:
    """Change a subscription's status (e.g. from a payment-provider webhook or the admin).

    A trial that converts to active starts a new, paid period at once and
    gets the paid allowance; canceling stops renewals (credits already
    granted stay until they expire).
    """
    if status not in Subscription.Status.values:
        raise InvalidRequest("Unknown subscription status.")
    now = now or timezone.now()
    with transaction.atomic():
        current = (
            Subscription.objects.select_for_update()
            .select_related("plan__credit_type", "account")
            .get(pk=subscription.pk)
        )
        if current.status == status:
            return current
        if current.status == Subscription.Status.CANCELED:
            raise InvalidRequest("A canceled subscription cannot be resumed; start a new one.")
        converting = current.is_trial and status == Subscription.Status.ACTIVE
        current.status = status
        fields = ["status", "updated_at"]
        if status == Subscription.Status.CANCELED:
            current.canceled_at = now
            fields.append("canceled_at")
        if converting:
            current.current_period_start, current.current_period_end = now, period_add_month(now)
            fields += ["current_period_start", "current_period_end"]
        current.save(update_fields=fields)
        if converting:
            _allowance_grant(subscription=current, actor=actor or Actor.system())
    return current
