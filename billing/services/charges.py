"""Charges and staff adjustments: one posting each."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from accounts.exceptions import AccountSuspended
from accounts.models import Account
from billing.core import Actor, posting
from billing.events import charge_declined_attach, zero_charge_event_record
from billing.exceptions import InsufficientCredits, InvalidAmount
from billing.models import LedgerEntry
from billing.services.amounts import amount_validate, capture_amount_validate, signed_amount_validate
from config.atomic import service_atomic
from pricing.models import CreditType, PricingAnomaly
from pricing.services import Quote, zero_cost_charge_record


@dataclass(frozen=True)
class ZeroCharge:
    """A priced charge that came to zero: nothing moved (a ledger entry is never zero).

    `anomaly` is the recorded `zero_cost` anomaly when a paid key settled at
    zero (the classic way streamed usage is given away); None for a free key.
    """

    quote: Quote
    anomaly: PricingAnomaly | None


def zero_cost_settle(
    *, quote: Quote, account: Account, task_id: str = "", route: str = "", idempotency_key: str = ""
) -> ZeroCharge:
    """Settle a priced debit (a charge, or a hold's capture) that came to zero: record a paid key's zero."""
    if quote.anomaly != "zero_cost":
        return ZeroCharge(quote=quote, anomaly=None)
    with service_atomic():  # the anomaly and its pricing.anomaly event commit together
        anomaly = zero_cost_charge_record(
            quote=quote, account=account, task_id=task_id, route=route, idempotency_key=idempotency_key
        )
        result = ZeroCharge(quote=quote, anomaly=anomaly)
        zero_charge_event_record(result, account=account)
    return result


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
) -> LedgerEntry | ZeroCharge:
    """Take credits for one action, or raise InsufficientCredits and change nothing.

    With a `quote` (from `pricing.services.price_quote`, computed before this
    call so no pricing work happens under the wallet lock) the amount is the
    quote's, and the entry records the key, price version and usage. A quote
    of zero moves nothing and returns a `ZeroCharge` (see `zero_cost_settle`).
    """
    if quote is not None:
        if quote.credit_type.pk != credit_type.pk:
            raise InvalidAmount("The quote is in another credit type.")
        if amount is not None and capture_amount_validate(amount, credit_type) != quote.amount:
            raise InvalidAmount("The amount does not match the quote.")
        amount = quote.amount
    if quote is not None and quote.amount == 0:
        if not account.is_active:
            raise AccountSuspended()
        return zero_cost_settle(
            quote=quote, account=account, task_id=task_id, route=route, idempotency_key=idempotency_key
        )
    value = amount_validate(amount, credit_type)
    if not account.is_active:
        raise AccountSuspended()
    try:
        with posting(account=account, credit_type=credit_type, debit=True) as p:
            p.require_available(value)
            p.count_daily_usage(value)
            entry = p.post(
                kind=LedgerEntry.Kind.CHARGE,
                amount=-value,
                actor=actor,
                task_id=task_id,
                route=route,
                description=description,
                metadata=metadata,
                idempotency_key=idempotency_key,
                pricing=quote.ledger_fields() if quote is not None else None,
                event="charge.created",
            )
            return entry
    except InsufficientCredits as error:
        charge_declined_attach(
            error,
            account=account,
            credit_type=credit_type,
            amount=value,
            task_id=task_id,
            route=route,
            idempotency_key=idempotency_key,
        )
        raise


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
    value = signed_amount_validate(amount, credit_type)
    with posting(account=account, credit_type=credit_type, create=True) as p:
        if value < 0:
            p.require_available(-value)
        return p.post(
            kind=LedgerEntry.Kind.ADJUSTMENT, amount=value, actor=actor, description=reason, metadata=metadata
        )
