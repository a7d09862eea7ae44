"""Writes to the credit ledger: the only place a balance changes.

Every function here that moves credits:

1. runs inside `transaction.atomic()` (joining the caller's transaction when
   there is one, e.g. the idempotency wrapper of the API);
2. locks exactly one wallet row with `SELECT ... FOR NO KEY UPDATE` (no join,
   so no other row is locked), which serialises all changes to that wallet;
3. decides from the locked row, never from a cache;
4. updates the stored balance and inserts the ledger entry, both or neither.

Between the lock and the commit there is no network call and no heavy
Python: a wallet is only as fast as its lock is short. Checks that do not
need the lock (amount format, account status) run before it is taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.exceptions import AccountSuspended
from accounts.models import Account, ApiKey
from billing.exceptions import AmountTooLarge, InsufficientCredits, InvalidAmount
from billing.models import MONEY_DIGITS, MONEY_PLACES, CreditType, LedgerEntry, Wallet

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


def wallet_lock(*, account: Account, credit_type: CreditType, create: bool = False) -> Wallet | None:
    """Lock and return the wallet row; with create=True make it first if missing.

    Must be called inside a transaction. Only the wallet row is locked.
    """
    wallet = (
        Wallet.objects.select_for_update(no_key=True)
        .filter(account_id=account.pk, credit_type_id=credit_type.pk)
        .first()
    )
    if wallet is None and create:
        # Two first grants may race to create the wallet: the unique constraint
        # lets one insert win and the other do nothing; both then lock it.
        Wallet.objects.bulk_create(
            [Wallet(account_id=account.pk, credit_type_id=credit_type.pk)], ignore_conflicts=True
        )
        wallet = Wallet.objects.select_for_update(no_key=True).get(account_id=account.pk, credit_type_id=credit_type.pk)
    if wallet is not None:
        wallet.account = account
        wallet.credit_type = credit_type
    return wallet


def wallet_changed(wallet: Wallet) -> None:
    """Call after any change to a wallet's balance or held amount, inside the transaction.

    Registers the after-commit side effects of a wallet change (display-cache
    invalidation, metrics). Nothing here may touch the network before commit.
    """


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
) -> LedgerEntry:
    """Apply a signed amount to a locked wallet and record it. Caller checked the bounds."""
    new_balance = wallet.balance + amount
    if new_balance < 0:  # pragma: no cover - callers check first; the CHECK constraint is the backstop
        raise InsufficientCredits(available=wallet.available, required=-amount)
    if new_balance >= BALANCE_CEILING:
        raise AmountTooLarge()
    now = timezone.now()
    Wallet.objects.filter(pk=wallet.pk).update(balance=new_balance, updated_at=now)
    wallet.balance = new_balance
    wallet.updated_at = now
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
    )
    entry.save(force_insert=True)
    wallet_changed(wallet)
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
) -> LedgerEntry:
    """Add credits to the account's wallet, creating the wallet if needed."""
    value = amount_validate(amount, credit_type)
    with transaction.atomic():
        wallet = wallet_lock(account=account, credit_type=credit_type, create=True)
        return _append_entry(
            wallet=wallet,
            kind=LedgerEntry.Kind.GRANT,
            amount=value,
            actor=actor,
            description=reason,
            task_id=task_id,
            metadata=metadata,
            idempotency_key=idempotency_key,
        )


def charge_create(
    *,
    account: Account,
    credit_type: CreditType,
    amount: Decimal | str,
    actor: Actor,
    task_id: str = "",
    route: str = "",
    description: str = "",
    metadata: dict | None = None,
    idempotency_key: str = "",
) -> LedgerEntry:
    """Take credits for one action, or raise InsufficientCredits and change nothing."""
    value = amount_validate(amount, credit_type)
    if not account.is_active:
        raise AccountSuspended()
    with transaction.atomic():
        wallet = wallet_lock(account=account, credit_type=credit_type)
        available = wallet.available if wallet is not None else Decimal(0)
        if wallet is None or available < value:
            raise InsufficientCredits(available=available, required=value)
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
    with transaction.atomic():
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
