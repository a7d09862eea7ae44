"""Holds: reserve credits for a job whose cost is not known yet, then capture, release or expire.

Every transition is a posting on the hold's wallet (the same single lock as
charges) that re-reads the hold under the lock: whoever comes second sees the
first one's committed status. The move out of `pending` is also a conditional
UPDATE whose row count is checked, so even a writer that skipped the wallet
lock could not resolve a hold twice. Lock order is always wallet, then hold:
no deadlocks between capture, release and the expiry sweep.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from accounts.exceptions import AccountSuspended
from accounts.models import Account
from billing.core import Actor, Posting, posting, sweep
from billing.events import hold_event_record
from billing.exceptions import HoldNotPending, InvalidExpiresIn
from billing.models import Hold, LedgerEntry
from billing.services.amounts import amount_validate, capture_amount_validate
from billing.services.charges import zero_cost_settle
from config import metrics
from config.errors import InvalidRequest
from config.rows import row_get, row_update
from pricing.models import CreditType
from pricing.services import Quote, Usage, price_quote, usage_parse

logger = logging.getLogger(__name__)


def hold_expires_at(expires_in: int | None, *, now: datetime | None = None) -> datetime:
    """When a hold created now with `expires_in` seconds expires (default and ceiling from settings)."""
    maximum = settings.CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S
    if expires_in is None:
        expires_in = settings.CREDITLEDGER_HOLD_DEFAULT_EXPIRES_IN_S
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= maximum:
        raise InvalidExpiresIn(f"expires_in must be a whole number of seconds from 1 to {maximum}.")
    return (now or timezone.now()) + timedelta(seconds=expires_in)


def _price(*, key: str, usage: Usage, credit_type: CreditType) -> tuple[Decimal, str, dict, Quote]:
    """Price usage with the catalogue (outside any lock): amount, price reference, ledger pricing columns, quote."""
    quote = price_quote(key=key, usage=usage, credit_type=credit_type)
    return capture_amount_validate(quote.amount, credit_type), quote.price_ref[:64], quote.ledger_fields(), quote


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
    Usage is a JSON object of counts (`pricing.services.usage_parse`), kept
    on the hold as given.
    """
    if amount is None and (not price_key or estimated_usage is None):
        raise InvalidRequest("Give amount, or price_key with estimated_usage.")
    estimate = usage_parse(estimated_usage) if estimated_usage is not None else None
    if amount is None:
        amount, price_version, _, _ = _price(key=price_key, usage=estimate, credit_type=credit_type)
    elif price_key:
        # An explicit amount with a price key: the key must be priced now, or
        # its capture by usage would only fail once the job is done.
        _, price_version, _, _ = _price(key=price_key, usage=Usage(), credit_type=credit_type)
    value = amount_validate(amount, credit_type)
    if on_expiry not in Hold.OnExpiry.values:
        raise InvalidRequest("on_expiry must be 'release' or 'capture'.")
    if not account.is_active:
        raise AccountSuspended()
    now = timezone.now()
    expires_at = hold_expires_at(expires_in, now=now)
    with posting(account=account, credit_type=credit_type, debit=True) as p:
        p.require_available(value)
        p.count_daily_usage(value, now=now)
        hold = Hold(
            wallet=p.wallet,
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
        p.hold_reserve(hold)
        hold_event_record(hold, type="hold.created")
        p.after_commit(metrics.HOLDS.labels(event="created").inc)
    return hold


def _hold_reread(p: Posting, hold: Hold) -> Hold:
    """The hold as committed before this posting's lock: its status is now settled for the transaction."""
    current = row_get(Hold, hold.pk)
    current.account, current.credit_type = p.account, p.credit_type
    return current


def _hold_resolve(
    p: Posting,
    *,
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
    """Move a pending hold (re-read under the wallet lock) to `status`, charging `captured`."""
    now = timezone.now()
    # The reservation is freed in the same UPDATE as the charge (or alone):
    # the charge may take the balance below the old held.
    new_held = p.wallet.held - hold.amount
    p.settle_daily_usage(reserved_at=hold.created_at, reserved=hold.amount, used=captured)
    entry = None
    if captured > 0:
        entry = p.post(
            kind=LedgerEntry.Kind.CHARGE,
            amount=-captured,
            actor=actor,
            task_id=hold.task_id,
            route=hold.route,
            description=f"{'Expiry capture' if status == Hold.Status.EXPIRED else 'Capture'} of {hold.public_id}",
            metadata={**hold.metadata, **(metadata or {}), "hold": hold.public_id},
            idempotency_key=idempotency_key,
            held=new_held,
            pricing=pricing,
        )
    else:
        p.held_set(new_held)
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
    hold_event_record(hold)
    p.after_commit(metrics.HOLDS.labels(event=status).inc)
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
        if not hold.price_key:
            raise InvalidRequest("This hold has no price key: capture it with an amount.")
        requested, price_version, pricing, quote = _price(
            key=hold.price_key, usage=usage_parse(usage), credit_type=hold.credit_type
        )
    else:
        requested = capture_amount_validate(amount, hold.credit_type)
    with posting(account=hold.account, credit_type=hold.credit_type) as p:
        current = _hold_reread(p, hold)
        if current.status != Hold.Status.PENDING:
            if current.status == Hold.Status.CAPTURED and current.requested_amount == requested:
                return current
            raise HoldNotPending(hold_id=current.public_id, status=current.status)
        if quote is not None and quote.amount == 0:
            # A paid key captured at zero usage is the classic way streamed
            # usage is given away: it settles (the job is over), but is
            # recorded and reported like a zero-cost charge.
            zero_cost_settle(
                quote=quote,
                account=current.account,
                task_id=current.task_id,
                route=current.route,
                idempotency_key=idempotency_key,
            )
        captured = min(requested, current.amount + p.available)
        if captured < requested:
            shortfall, hold_id = requested - captured, current.public_id
            p.after_commit(
                lambda: logger.warning("hold %s captured short by %s: wallet could not cover it", hold_id, shortfall)
            )
        return _hold_resolve(
            p,
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


def hold_release(*, hold: Hold, actor: Actor, reason: str = "") -> Hold:
    """Free a pending hold without charging. Releasing a released hold returns it unchanged."""
    with posting(account=hold.account, credit_type=hold.credit_type) as p:
        current = _hold_reread(p, hold)
        if current.status != Hold.Status.PENDING:
            if current.status == Hold.Status.RELEASED:
                return current
            raise HoldNotPending(hold_id=current.public_id, status=current.status)
        return _hold_resolve(
            p, hold=current, status=Hold.Status.RELEASED, captured=Decimal(0), release_reason=reason, actor=actor
        )


def hold_expire(*, hold: Hold, now: datetime | None = None) -> Hold | None:
    """Apply the hold's `on_expiry` if it is still pending and due; None if someone else resolved it.

    `on_expiry=capture` charges the whole held amount, which the wallet always
    covers: a pending hold's amount is part of `held`, and held <= balance.
    """
    now = now or timezone.now()
    with posting(account=hold.account, credit_type=hold.credit_type) as p:
        current = _hold_reread(p, hold)
        if current.status != Hold.Status.PENDING or current.expires_at > now:
            return None
        captured = current.amount if current.on_expiry == Hold.OnExpiry.CAPTURE else Decimal(0)
        return _hold_resolve(
            p,
            hold=current,
            status=Hold.Status.EXPIRED,
            captured=captured,
            requested=captured if captured else None,
            actor=Actor.system(),
        )


def holds_expire_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Expire every pending hold due by `now`, one transaction per hold; how many this call expired.

    Safe to run in several workers at once: each hold is resolved under its
    wallet's lock after re-reading its status, so a hold another worker (or
    a capture) got to first is skipped.
    """
    now = now or timezone.now()
    due = Hold.objects.filter(status=Hold.Status.PENDING, expires_at__lte=now).select_related("account", "credit_type")
    return sweep(due, lambda hold: hold_expire(hold=hold, now=now), batch_size=batch_size)
