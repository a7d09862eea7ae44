"""Refund a charge: ledger entry, wallet change and refund log in one transaction.

Used by the API (automatic refunds after a failed AI call, seed 003), by the
admin (staff refunds) and by anything else that gives credits back for a
charge. The sum of a charge's refunds never exceeds the charge: the service
checks what remains under the wallet lock, which serialises every refund of
the charge, and a database trigger (migration 0002) refuses it regardless.
"""

from __future__ import annotations

from decimal import Decimal

from billing import statements
from billing.core import Actor, posting
from billing.models import LedgerEntry
from billing.services import amount_validate
from config.rows import row_insert
from events.services import event_record
from refunds.exceptions import ChargeFullyRefunded, InvalidRefundReason, NotACharge, RefundExceedsCharge
from refunds.models import RefundLog


def charge_refunded_total(charge: LedgerEntry) -> Decimal:
    """What has been refunded of this charge so far (positive)."""
    return statements.charge_refunded_total(charge_id=charge.pk)


def charge_refundable(charge: LedgerEntry) -> Decimal:
    """What remains refundable of this charge (not locked: for display only)."""
    if charge.kind != LedgerEntry.Kind.CHARGE:
        return Decimal(0)
    return (-charge.amount - charge_refunded_total(charge)).quantize(charge.credit_type.quantum)


def refund_issue(
    *,
    charge: LedgerEntry,
    actor: Actor,
    reason: str,
    amount: Decimal | str | None = None,
    api_route: str = "",
    error_message: str = "",
    metadata: dict | None = None,
    note: str = "",
    idempotency_key: str = "",
) -> RefundLog:
    """Give back `amount` of a charge (default: all that remains refundable).

    Raises NotACharge (422), RefundExceedsCharge or ChargeFullyRefunded
    (409); changes nothing when it raises. Refunds are allowed on suspended
    accounts: they only ever give credits back.
    """
    if reason not in RefundLog.Reason.values:
        raise InvalidRefundReason(
            f"Unknown refund reason {reason!r}; use one of: {', '.join(RefundLog.Reason.values)}."
        )
    if charge.kind != LedgerEntry.Kind.CHARGE:
        raise NotACharge()
    credit_type = charge.credit_type
    requested = amount_validate(amount, credit_type) if amount is not None else None
    with posting(account=charge.account, credit_type=credit_type) as p:
        # Under the wallet lock every other refund of this charge has either
        # committed (and is counted here) or waits for us.
        refundable = (-charge.amount - charge_refunded_total(charge)).quantize(credit_type.quantum)
        if refundable <= 0:
            raise ChargeFullyRefunded(quantum=credit_type.quantum)
        value = refundable if requested is None else requested
        if value > refundable:
            raise RefundExceedsCharge(refundable=refundable, requested=value)
        entry = p.post(
            kind=LedgerEntry.Kind.REFUND,
            amount=value,
            actor=actor,
            related_entry=charge,
            task_id=charge.task_id,
            route=api_route or charge.route,
            description=f"Refund ({reason}) of {charge.public_id}",
            metadata={**(metadata or {}), "reason": reason},
            idempotency_key=idempotency_key,
        )
        log = RefundLog(
            account=charge.account,
            credit_type=credit_type,
            amount=value,
            reason=reason,
            api_route=api_route,
            error_message=error_message,
            charge=charge,
            refund_entry=entry,
            metadata=metadata or {},
            note=note,
            idempotency_key=idempotency_key,
            actor_api_key=actor.api_key,
            actor_user=actor.user,
            approver_user=actor.approver,
        )
        row_insert(log)
        log.refundable_after = refundable - value  # type: ignore[attr-defined]  # for the response only
        _refund_event_record(log)
    return log


def _refund_event_record(log: RefundLog) -> None:
    """`refund.created`, in the refund's transaction; the snapshot is the body POST /refunds answers with."""
    from refunds.api import RefundCreatedOutput

    event_record(type="refund.created", account=log.account, data=dict(RefundCreatedOutput(log).data))
