"""Gates on the admin's staff money actions: an app above billing may hold one back.

The staff grant and adjustment (billing/admin.py) and the staff refund
(refunds/admin_refund.py) ask `staff_money_gate(request, action)` before they
call their service. A gate registered here (`staff_money_gate_register`) may
take the action over, e.g. store it as a four-eyes approval request
(approvals/admin.py): it returns the message to show (HTML) and nothing is
posted now. It returns None to let the action post as usual, and may raise a
`DomainError`, which the admin shows like a refusal from the service.
Billing knows nothing of the apps that register: layers point down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from accounts.models import Account
from billing.models import LedgerEntry
from pricing.models import CreditType


@dataclass(frozen=True)
class StaffMoneyAction:
    """A staff money action about to be posted, as its admin form gave it."""

    kind: str  # LedgerEntry.Kind.GRANT, ADJUSTMENT or REFUND
    account: Account
    credit_type: CreditType
    amount: Decimal  # signed for an adjustment; a refund's is what will be refunded
    reason: str = ""  # a grant's or an adjustment's reason
    charge: LedgerEntry | None = None  # a refund's charge
    refund_reason: str = ""  # a refund's reason code
    note: str = ""  # a refund's staff note


STAFF_MONEY_GATES: list[Callable] = []


def staff_money_gate_register(gate: Callable) -> None:
    """Ask `gate(request, action)` -> HTML message or None before each staff money action posts."""
    STAFF_MONEY_GATES.append(gate)


def staff_money_gate(request, action: StaffMoneyAction) -> str | None:
    """The message of the first gate that took `action` over; None if it should post now."""
    for gate in STAFF_MONEY_GATES:
        if (message := gate(request, action)) is not None:
            return message
    return None
