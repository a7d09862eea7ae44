"""The ledger core: the one posting protocol every balance change goes through.

A money operation (charge, grant, adjustment, hold, capture, release, expiry,
refund, allowance...) is written as

    with posting(account=account, credit_type=credit_type, debit=True) as p:
        p.require_available(value)           # decide from the locked row
        p.count_daily_usage(value)           # only debits, only if a limit applies
        entry = p.post(kind=..., amount=-value, actor=actor, ...)

and never repeats the sequence itself. `posting()`:

1. opens the transaction (`service_atomic()`: a savepoint in a caller's
   transaction, or joining the API's request transaction, see config/atomic.py);
2. locks exactly one wallet row, `SELECT ... FOR NO KEY UPDATE` (for a debit,
   the same statement reads the daily limit in force); every change to that
   wallet is serialised behind this lock, and one operation never locks a
   second wallet while it holds one (a batch of charges locks all its wallets
   together, in one statement and a fixed order: `postings_for_debit`);
3. hands the operation a `Posting`, whose methods decide from the locked row
   (never from a cache) and write: the wallet's balance and the ledger entry in
   one statement (`post`), the held amount with the row that explains it
   (`hold_reserve`, `held_set`), grant lots (`lot_add`, `lot_drain`, and
   the debit of lots in consumption order inside `post`), today's usage
   (`count_daily_usage`, `settle_daily_usage`);
4. registers the after-commit work (display-cache invalidation, metrics): it
   runs only if the transaction commits, never touches the network before
   COMMIT and never fails the change.

Invariants the core keeps (and the database enforces again, see the models'
constraints and the append-only trigger): a wallet's balance is the sum of its
ledger entries; balance >= held >= 0; lot_balance <= balance; an entry's
`balance_after` is the wallet's balance after it; each entry is signed over
the previous entry's hash in its wallet and the wallet's `chain_head` is the
newest hash (billing/chain.py); no balance reaches `BALANCE_CEILING`.
Between the lock and the commit there is no network call and no heavy
Python: a wallet is only as fast as its lock is short, so checks that do not
need the lock (amount format, account status, pricing) run before `posting()`
is entered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import Account, ApiKey
from billing import chain, statements
from billing import events as billing_events
from billing.balance_cache import balance_cache_invalidate_on_commit
from billing.exceptions import AmountTooLarge, DailyLimitExceeded, InsufficientCredits
from billing.models import (
    CreditLot,
    DailyUsage,
    LedgerEntry,
    Wallet,
)
from config import metrics
from config.atomic import service_atomic
from config.errors import DomainError
from config.money import MONEY_CEILING
from config.rows import row_buffer, row_buffer_current, row_update, row_update_then_insert
from events.services import events_prepare
from pricing.models import CreditType

# NUMERIC(28, 9) holds values below 10**19; no balance or amount may reach it.
BALANCE_CEILING = MONEY_CEILING


@dataclass(frozen=True)
class Actor:
    """Who caused a ledger entry: an API key, a staff user, or the system (neither).

    `approver`: the second staff user who approved a staff user's request
    (four-eyes approvals, the approvals app); recorded beside `user`.
    """

    api_key: ApiKey | None = None
    user: Any | None = None  # settings.AUTH_USER_MODEL
    approver: Any | None = None  # settings.AUTH_USER_MODEL

    @classmethod
    def system(cls) -> Actor:
        return cls()


# --- daily limits: the pure parts the lock needs ----------------------------------


def daily_limit_timezone() -> ZoneInfo:
    return ZoneInfo(settings.CREDITLEDGER_DAILY_LIMIT_TIMEZONE)


def daily_limit_day(now: datetime | None = None) -> date:
    """The calendar day that `now` falls on in the daily-limit time zone."""
    return timezone.localtime(now or timezone.now(), daily_limit_timezone()).date()


def daily_limit_from(
    has_override: bool, override: Decimal | None, is_trial: bool | None, paid: Decimal | None, trial: Decimal | None
) -> Decimal | None:
    """The override if there is one (empty: no limit); else the plan's trial or paid figure; else None.

    The columns of `statements.daily_limit_row`: `is_trial` is None when no
    plan applies (no live subscription, or no plan limit source registered).
    """
    if has_override:
        return override
    if is_trial is None:
        return None
    return trial if is_trial else paid


# --- balance observers ------------------------------------------------------------------

BalanceObserver = Callable[["Posting", Decimal, Decimal], None]
_balance_observers: list[BalanceObserver] = []


def balance_observer_register(fn: BalanceObserver) -> None:
    """Call `fn(posting, available_before, available_after)` after each change of a wallet's available balance.

    It runs inside the posting, under the wallet lock, after the change was
    written (`post`, `hold_reserve`, `held_set`), so it decides from exact
    before/after values that no concurrent change can interleave with (balance
    alerts: `billing.alerts`; payments' auto-recharge). An exception from it
    rolls the operation back. It may write rows of its own (in the same
    transaction) and schedule work with `posting.after_commit`; it must touch
    no network and stay quick: the lock is held. Registered from an
    AppConfig.ready(); registering twice is a no-op.
    """
    if fn not in _balance_observers:
        _balance_observers.append(fn)


# --- the protocol ---------------------------------------------------------------------


class Posting:
    """One money operation on one locked wallet, inside its transaction (see the module docstring).

    `wallet` is None only when the account has no wallet of this credit type
    and `posting()` was not asked to create one: such a wallet has nothing
    available, and `post` may not be called.
    """

    def __init__(
        self, *, account: Account, credit_type: CreditType, wallet: Wallet | None, daily_limit: Decimal | None
    ) -> None:
        self.account = account
        self.credit_type = credit_type
        self.wallet = wallet
        self.daily_limit = daily_limit
        # What the last change was, for balance observers that act on some changes only: a
        # ledger entry's kind ("charge", "adjustment"...), or "hold" with the hold in `last_hold`.
        self.last_change: str = ""
        self.last_hold: Any = None
        if wallet is not None:
            wallet.account = account
            wallet.credit_type = credit_type

    # --- deciding -------------------------------------------------------------------

    @property
    def available(self) -> Decimal:
        return self.wallet.available if self.wallet is not None else Decimal(0)

    def require_available(self, amount: Decimal) -> None:
        """Raise InsufficientCredits (402) unless the wallet's available balance covers `amount`."""
        if self.wallet is None or self.available < amount:
            raise InsufficientCredits(available=self.available, required=amount, scale=self.credit_type.scale)

    def count_daily_usage(self, amount: Decimal, *, now: datetime | None = None) -> None:
        """Count a debit against today's usage, or raise DailyLimitExceeded (the limit was read with the lock).

        Counted with one upsert under the wallet lock, so concurrent debits
        cannot overshoot; raising rolls the increment back with everything
        else. Usage is counted only while a limit applies. Needs
        `posting(debit=True)`.
        """
        if self.daily_limit is None:
            return
        day = daily_limit_day(now)
        used = statements.daily_usage_add(
            account_id=self.wallet.account_id, wallet_id=self.wallet.pk, day=day, amount=amount
        )
        if used > self.daily_limit:
            resets_at = datetime.combine(day + timedelta(days=1), time.min, tzinfo=daily_limit_timezone())
            raise DailyLimitExceeded(
                remaining=self.daily_limit - (used - amount),
                required=amount,
                resets_at=resets_at.isoformat(),
                scale=self.credit_type.scale,
            )

    def settle_daily_usage(self, *, reserved_at: datetime, reserved: Decimal, used: Decimal) -> None:
        """A hold resolved: replace its reservation on the day it was made by what it actually used.

        A hold counts its whole amount when it is created (so concurrent holds
        cannot overshoot); capture, release and expiry correct that day's
        figure and never refuse (the work is done). Only a day that has a row
        (a limit applied that day) is corrected; never below zero.
        """
        delta = used - reserved
        if delta:
            DailyUsage.objects.filter(wallet_id=self.wallet.pk, day=daily_limit_day(reserved_at)).update(
                used=Greatest(F("used") + delta, Value(Decimal(0)))
            )

    # --- writing ----------------------------------------------------------------------

    def post(
        self,
        *,
        kind: str,
        amount: Decimal,
        actor: Actor,
        held: Decimal | None = None,
        pricing: dict | None = None,
        metadata: dict | None = None,
        lot_drained: bool = False,
        event: str | None = None,
        **fields: Any,
    ) -> LedgerEntry:
        """Apply a signed amount to the locked wallet and record it: both in one statement.

        The caller decided the amount may move (`require_available`, a
        refund's remaining amount...). A debit takes credits from the
        wallet's lots in consumption order (except an expiry, which drains
        one named lot with `lot_drain`). `pricing` holds the ledger's pricing
        columns (`Quote.ledger_fields()`); `held`, if given, is set in the
        same UPDATE (a capture frees its hold and charges at once: the CHECK
        held <= balance holds for the row as the statement leaves it).
        `fields` are the entry's other columns (task_id, route, description,
        idempotency_key, related_entry). `lot_drained=True`: the caller
        already took this debit from one named lot with `lot_drain` (a
        purchase's clawback), as an expiry does. `event`: the type of the
        event reporting the entry (`charge.created`...), written in the same
        statement with whatever its hooks add (a webhook fan-out message).
        """
        wallet = self.wallet
        before = wallet.available
        new_balance = wallet.balance + amount
        if new_balance < 0:  # pragma: no cover - callers decide first; the CHECK constraint is the backstop
            raise InsufficientCredits(available=wallet.available, required=-amount, scale=self.credit_type.scale)
        if new_balance >= BALANCE_CEILING:
            raise AmountTooLarge()
        now = timezone.now()
        if amount < 0 and kind != LedgerEntry.Kind.EXPIRY and not lot_drained:
            self._lots_debit(-amount)
        entry = LedgerEntry(
            wallet=wallet,
            account=self.account,
            credit_type=self.credit_type,
            kind=kind,
            amount=amount,
            balance_after=new_balance,
            metadata=metadata or {},
            actor_api_key=actor.api_key,
            actor_user=actor.user,
            approver_user=actor.approver,
            created_at=now,
            **fields,
            **(pricing or {}),
        )
        # The hash chain (billing/chain.py): from values in hand, no round trip.
        head = chain.entry_sign(entry, prev_hash=wallet.chain_head)
        changes: dict[str, Any] = {"balance": new_balance, "updated_at": now, "chain_head": head}
        if held is not None:
            changes["held"] = held
        also = billing_events.entry_event_rows(event, entry) if event else ()
        buffer = row_buffer_current()
        if buffer is None:
            row_update_then_insert(Wallet, wallet.pk, changes, entry, also=also)
        else:
            # A batch's posting (`postings_for_debit`): written in bulk with the batch's other rows before its
            # commit, still under its locks; the entry's key is set then.
            buffer.update(Wallet, wallet.pk, changes)
            buffer.insert(entry, *also)
        wallet.chain_head = head
        wallet.balance = new_balance
        if held is not None:
            wallet.held = held
        wallet.updated_at = now
        self._changed(entry)
        self.last_change, self.last_hold = kind, None
        self._observe(before)
        return entry

    def hold_reserve(self, hold: Any) -> None:
        """Reserve `hold.amount` of the available balance: the wallet's held and the new hold row, one statement."""
        self._unbuffered("hold_reserve")
        now = timezone.now()
        before = self.wallet.available
        new_held = self.wallet.held + hold.amount
        row_update_then_insert(Wallet, self.wallet.pk, {"held": new_held, "updated_at": now}, hold)
        self.wallet.held = new_held
        self.wallet.updated_at = now
        self._changed()
        self.last_change, self.last_hold = "hold", hold
        self._observe(before)

    def held_set(self, held: Decimal) -> None:
        """Set the wallet's held amount alone (a hold resolved without a charge)."""
        self._unbuffered("held_set")
        now = timezone.now()
        before = self.wallet.available
        row_update(Wallet, self.wallet.pk, held=held, updated_at=now)
        self.wallet.held = held
        self.wallet.updated_at = now
        self._changed()
        self.last_change, self.last_hold = "held", None
        self._observe(before)

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run `callback` once the transaction commits (never if it rolls back); its errors are logged, not raised."""
        transaction.on_commit(callback, robust=True)

    def _observe(self, before: Decimal) -> None:
        """Tell the balance observers (under the lock) if the available balance moved."""
        after = self.wallet.available
        if after != before:
            for fn in _balance_observers:
                try:
                    fn(self, before, after)
                except DomainError as error:
                    if row_buffer_current() is not None:
                        # In a batch the change is already in the buffer: a refusal now cannot be that
                        # item's answer alone. The whole batch rolls back instead.
                        raise RuntimeError(f"A balance observer refused a change inside a batch: {error}") from error
                    raise

    def _unbuffered(self, operation: str) -> None:
        """Refuse an operation a batch's postings do not buffer (`postings_for_debit` charges only)."""
        if row_buffer_current() is not None:
            raise RuntimeError(f"{operation} is not available inside a batch's postings; only charges are.")

    def _changed(self, entry: LedgerEntry | None = None) -> None:
        """After-commit side effects of a wallet change: display-cache invalidation (one per transaction), metrics."""
        balance_cache_invalidate_on_commit(account=self.account.public_id)
        if entry is not None:
            self.after_commit(
                partial(
                    metrics.ledger_entry_committed,
                    kind=entry.kind,
                    credit_type=self.credit_type.code,
                    amount=entry.amount,
                    scale=self.credit_type.scale,
                )
            )

    # --- grant lots -----------------------------------------------------------------------
    #
    # A grant with a priority or an expiry gets a CreditLot; any other credit
    # joins the wallet's plain pool (balance - lot_balance), which has no row.
    # Debits take lots in order: priority (higher first), then soonest expiry
    # (never-expiring last), then oldest; the pool stands where a priority-0,
    # never-expiring lot would. Most wallets have no lots, so a debit reads
    # `lot_balance` from the locked row and, when it is zero, touches no lot
    # table at all. Every lot change happens under the wallet lock, so lots
    # need no lock of their own.

    def lot_add(
        self,
        *,
        entry: LedgerEntry,
        priority: int,
        expires_at: datetime | None,
        source: str = CreditLot.Source.GRANTED,
    ) -> CreditLot | None:
        """Give a just-posted grant its own lot if it has a priority or an expiry, or was purchased."""
        self._unbuffered("lot_add")
        if priority == 0 and expires_at is None and source == CreditLot.Source.GRANTED:
            return None
        lot = CreditLot(
            account_id=self.wallet.account_id,
            wallet=self.wallet,
            entry=entry,
            amount=entry.amount,
            remaining=entry.amount,
            priority=priority,
            expires_at=expires_at,
            source=source,
        )
        lot.save(force_insert=True)
        # After the balance update in `post`: CHECK (lot_balance <= balance) holds at every statement.
        self._lot_balance_set(self.wallet.lot_balance + entry.amount)
        return lot

    def lot_drain(self, lot: CreditLot, limit: Decimal | None = None) -> Decimal:
        """Take what is left of `lot` (at most `limit`), but no more than is available (held credits stay).

        The amount taken. Re-reads the lot: its `remaining` is settled under
        the wallet lock. The caller posts the matching debit (an `expiry`, or
        any debit with `lot_drained=True`).
        """
        self._unbuffered("lot_drain")
        remaining = CreditLot.objects.filter(pk=lot.pk).values_list("remaining", flat=True).get()
        amount = min(remaining, self.available) if limit is None else min(remaining, self.available, limit)
        if amount <= 0:
            return Decimal(0)
        CreditLot.objects.filter(pk=lot.pk).update(remaining=remaining - amount)
        lot.remaining = remaining - amount
        self._lot_balance_set(self.wallet.lot_balance - amount)
        return amount

    def _lot_balance_set(self, value: Decimal) -> None:
        Wallet.objects.filter(pk=self.wallet.pk).update(lot_balance=value)
        self.wallet.lot_balance = value

    def _lots_debit(self, amount: Decimal) -> None:
        """Take a debit of `amount` (positive) from the wallet's lots in consumption order, before `post`'s UPDATE."""
        wallet = self.wallet
        if not wallet.lot_balance:
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
            self._lot_balance_set(wallet.lot_balance - taken)


def _lot_before_pool(lot: CreditLot) -> bool:
    return lot.priority > 0 or (lot.priority == 0 and lot.expires_at is not None)


def _wallet_lock(*, account: Account, credit_type: CreditType, create: bool) -> Wallet | None:
    wallet = statements.wallet_lock(account_id=account.pk, credit_type_id=credit_type.pk)
    if wallet is None and create:
        # Two first grants may race to create the wallet: the unique constraint
        # lets one insert win and the other do nothing; both then lock it.
        Wallet.objects.bulk_create(
            [Wallet(account_id=account.pk, credit_type_id=credit_type.pk)], ignore_conflicts=True
        )
        wallet = statements.wallet_lock(account_id=account.pk, credit_type_id=credit_type.pk)
    return wallet


# Set while a posting is open in this thread or task: a second one inside it
# would lock a second wallet in the same transaction.
_posting_open: ContextVar[bool] = ContextVar("posting_open", default=False)


@contextmanager
def posting(
    *, account: Account, credit_type: CreditType, debit: bool = False, create: bool = False
) -> Iterator[Posting]:
    """Open one money operation: a transaction with this account's wallet of `credit_type` locked.

    `debit=True` also reads the daily limit in force, in the locking statement
    (as of its snapshot: a limit changed while this debit waited for the lock
    applies from the next one; either order is a valid history).
    `create=True` makes the wallet first if it is missing (credits going in).
    An exception inside the block rolls back everything the block wrote.
    """
    if _posting_open.get():
        raise RuntimeError("A posting is already open: a money operation locks one wallet (billing/core.py).")
    token = _posting_open.set(True)
    try:
        events_prepare()  # what an event's hooks read, refreshed before the lock (webhooks' endpoint types)
        with service_atomic():
            yield _locked_posting(account=account, credit_type=credit_type, debit=debit, create=create)
    finally:
        _posting_open.reset(token)


@contextmanager
def postings_for_debit(*, wallets: Sequence[tuple[Account, CreditType]]) -> Iterator[dict[tuple[int, int], Posting]]:
    """Open a debit posting on each of several wallets, all locked by one statement: for a batch of charges.

    The batch's wallets are locked together, in (account id, credit type id)
    order (`statements.wallets_lock_for_debit`), each with the daily limit
    in force read in the same statement, in one transaction. Each Posting
    (by (account pk, credit type pk)) is still used for its own wallet only,
    exactly as `posting(debit=True)` yields it; one with no wallet has
    nothing available. No other posting may open inside the block.

    What `post` writes (the wallet's new balance and head, the entry, its
    event and hooks' rows) and the events recorded meanwhile go to a
    `config.rows.RowBuffer` and are written in bulk when the block ends,
    before the commit and under the same locks: a few statements for the
    batch instead of one per item. Until then a new entry's `pk` is None.
    """
    if _posting_open.get():
        raise RuntimeError("A posting is already open: a money operation locks one wallet (billing/core.py).")
    token = _posting_open.set(True)
    try:
        events_prepare()
        with service_atomic(), row_buffer():
            named = {(account.pk, credit_type.pk): (account, credit_type) for account, credit_type in wallets}
            keys = sorted(named)
            locked = statements.wallets_lock_for_debit(keys=keys)
            opened: dict[tuple[int, int], Posting] = {}
            for key in keys:
                account, credit_type = named[key]
                wallet, limit_row = locked.get(key, (None, None))
                daily_limit = daily_limit_from(*limit_row) if limit_row is not None else None
                opened[key] = Posting(account=account, credit_type=credit_type, wallet=wallet, daily_limit=daily_limit)
            yield opened
    finally:
        _posting_open.reset(token)


def _locked_posting(*, account: Account, credit_type: CreditType, debit: bool, create: bool) -> Posting:
    """Take the wallet's lock (and, for a debit, read the daily limit with it); the open posting."""
    daily_limit = None
    if debit:
        wallet, limit_row = statements.wallet_lock_for_debit(account_id=account.pk, credit_type_id=credit_type.pk)
        if limit_row is not None:
            daily_limit = daily_limit_from(*limit_row)
    else:
        wallet = _wallet_lock(account=account, credit_type=credit_type, create=create)
    return Posting(account=account, credit_type=credit_type, wallet=wallet, daily_limit=daily_limit)


def sweep(queryset, apply: Callable[[Any], Any], *, batch_size: int) -> int:
    """Apply `apply` to every row of `queryset`, in pk-keyset batches; count the non-None results.

    For the scheduled jobs (hold expiry, lot expiry, renewals): each `apply`
    is its own posting under its own wallet's lock, so the job is safe in
    several workers at once. Keyset paging (not OFFSET), so rows that stay due,
    or that another worker resolved and `apply` skipped, are not read again.
    """
    done = 0
    last_pk = 0
    while True:
        batch = list(queryset.filter(pk__gt=last_pk).order_by("pk")[:batch_size])
        done += sum(1 for row in batch if apply(row) is not None)
        if len(batch) < batch_size:
            return done
        last_pk = batch[-1].pk
