"""Grants and their lots: credits in, with an optional priority and expiry, and the expiry of what is left.

A grant with an `expires_at` or a non-zero `priority` forms its own lot;
debits consume lots in order (see `billing.core.Posting`, "grant lots").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from accounts.models import Account
from billing.core import Actor, posting, sweep
from billing.exceptions import InvalidGrantTerms
from billing.models import CreditLot, LedgerEntry, Wallet
from billing.services.amounts import amount_validate
from pricing.models import CreditType

LOT_PRIORITY_MIN = -1000
LOT_PRIORITY_MAX = 1000


def grant_terms_validate(*, priority: int, expires_at: datetime | None) -> None:
    """A priority in range and, if given, a timezone-aware expiry."""
    in_range = isinstance(priority, int) and not isinstance(priority, bool) and LOT_PRIORITY_MIN <= priority
    if not in_range or priority > LOT_PRIORITY_MAX:
        raise InvalidGrantTerms(f"priority must be a whole number from {LOT_PRIORITY_MIN} to {LOT_PRIORITY_MAX}.")
    if expires_at is not None and (not isinstance(expires_at, datetime) or timezone.is_naive(expires_at)):
        raise InvalidGrantTerms("expires_at must be a timezone-aware datetime.")


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
    source: str = CreditLot.Source.GRANTED,
) -> LedgerEntry:
    """Add credits to the account's wallet, creating the wallet if needed.

    With an `expires_at` or a non-zero `priority` the credits form their own
    lot (consumed by priority, then soonest expiry); so do purchased credits
    (`source="purchased"`, payments), which a plain lot keeps apart from granted ones.
    """
    value = amount_validate(amount, credit_type)
    grant_terms_validate(priority=priority, expires_at=expires_at)
    with posting(account=account, credit_type=credit_type, create=True) as p:
        entry = p.post(
            kind=LedgerEntry.Kind.GRANT,
            amount=value,
            actor=actor,
            description=reason,
            task_id=task_id,
            metadata=metadata,
            idempotency_key=idempotency_key,
            event="grant.created",
        )
        p.lot_add(entry=entry, priority=priority, expires_at=expires_at, source=source)
        return entry


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
    with posting(account=wallet_row.account, credit_type=wallet_row.credit_type) as p:
        amount = p.lot_drain(lot)
        if amount <= 0:
            return None
        entry = p.post(
            kind=LedgerEntry.Kind.EXPIRY,
            amount=-amount,
            actor=Actor.system(),
            related_entry=grant_entry,
            description="Unused grant credits expired",
            metadata={"lot": lot.pk, "expires_at": lot.expires_at.isoformat()},
            event="lot.expired",
        )
        return entry


def grants_expire_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire every lot due by `now`, one short transaction per lot; how many expiry entries were written.

    Safe to run twice or in two workers at once: each lot is re-read under
    its wallet's lock, and one that is already drained writes nothing.
    """
    now = now or timezone.now()
    due = CreditLot.objects.filter(remaining__gt=0, expires_at__lte=now).only(
        "id", "wallet_id", "entry_id", "expires_at"
    )
    return sweep(due, lambda lot: lot_expire(lot=lot, now=now), batch_size=batch_size)
