"""Refund a charge: ledger entry, wallet change and refund log in one transaction.

Used by the API (automatic refunds after a failed AI call, seed 003), by the
admin (staff refunds) and by anything else that gives credits back for a
charge. The sum of a charge's refunds never exceeds the charge: the service
checks what remains under the wallet lock, which serialises every refund of
the charge, and a database trigger (migration 0002) refuses it regardless.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection
from django.db.models import Sum

from billing.models import LedgerEntry
from billing.services import Actor, amount_validate, ledger_entry_append, wallet_lock
from config.atomic import service_atomic
from config.rows import row_insert
from refunds.exceptions import ChargeFullyRefunded, InvalidRefundReason, NotACharge, RefundExceedsCharge
from refunds.models import RefundLog

_REFUNDED_TOTAL_SQL = "SELECT sum(amount) FROM {table} WHERE related_entry_id = %s AND kind = %s"


def charge_refunded_total(charge: LedgerEntry) -> Decimal:
    """What has been refunded of this charge so far (positive)."""
    if connection.vendor == "postgresql":
        # Runs under the wallet lock on every refund: a fixed statement, not an
        # ORM aggregate compiled per call (README "Performance").
        with connection.cursor() as cursor:
            cursor.execute(
                _REFUNDED_TOTAL_SQL.format(table=LedgerEntry._meta.db_table), [charge.pk, LedgerEntry.Kind.REFUND]
            )
            total = cursor.fetchone()[0]
    else:
        total = LedgerEntry.objects.filter(related_entry=charge, kind=LedgerEntry.Kind.REFUND).aggregate(
            s=Sum("amount")
        )["s"]
    return total or Decimal(0)


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
    with service_atomic():
        wallet = wallet_lock(account=charge.account, credit_type=credit_type)
        # Under the wallet lock every other refund of this charge has either
        # committed (and is counted here) or waits for us.
        refundable = (-charge.amount - charge_refunded_total(charge)).quantize(credit_type.quantum)
        if refundable <= 0:
            raise ChargeFullyRefunded()
        value = refundable if requested is None else requested
        if value > refundable:
            raise RefundExceedsCharge(refundable=refundable, requested=value)
        entry = ledger_entry_append(
            wallet=wallet,
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
        )
        row_insert(log)
    log.refundable_after = refundable - value  # type: ignore[attr-defined]  # for the response only
    return log
