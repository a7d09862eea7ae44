"""Writes for four-eyes approvals: ask, approve (post once), reject, expire.

Approving runs the very service the staff action would have run
(`billing.services.grant_create`, `adjustment_create`,
`refunds.services.refund_issue`) with `Actor(user=requester, approver=approver)`,
so the ledger entry (and a refund's log row) names both.

Exactly once: `approval_approve` locks the request row (SELECT ... FOR
UPDATE), decides from the locked row (still pending, not the requester's
own, not expired) and posts in the same transaction that marks it approved.
A second click or a second approver waits for the lock, then finds the
request decided and posts nothing. If the posting fails (a refund already
made in full meanwhile, a negative adjustment above what is available) the
whole transaction rolls back and the request stays pending, to be rejected
or approved later. Lock order is always request, then wallet (inside the
service's `posting()`), so two approvals cannot deadlock.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from approvals.exceptions import (
    ApprovalExpired,
    ApprovalNotPending,
    ApproverPermissionRequired,
    InvalidApprovalRequest,
    SelfApprovalRefused,
)
from approvals.models import APPROVE_PERMISSION, ApprovalRequest
from billing.models import LedgerEntry
from billing.services import Actor, adjustment_create, amount_validate, grant_create, signed_amount_validate
from config.money import money_plain
from events.services import event_record
from pricing.models import CreditType
from refunds.models import RefundLog
from refunds.services import refund_issue

Kind = ApprovalRequest.Kind
Status = ApprovalRequest.Status


def approval_request_create(
    *,
    kind: str,
    account: Account,
    credit_type: CreditType,
    amount: Decimal | str,
    requested_by: Any,
    reason: str = "",
    charge: LedgerEntry | None = None,
    refund_reason: str = "",
    note: str = "",
    now: datetime | None = None,
) -> ApprovalRequest:
    """Store a staff grant, adjustment or refund to wait for a second staff user; it posts nothing.

    The amount is checked now as the service will check it (scale, sign), so
    an approver never meets a request that could not post for its form.
    """
    if kind == Kind.ADJUSTMENT:
        value = signed_amount_validate(amount, credit_type)
        if not reason.strip():
            raise InvalidApprovalRequest("An adjustment needs a reason.")
    elif kind in (Kind.GRANT, Kind.REFUND):
        value = amount_validate(amount, credit_type)
    else:
        raise InvalidApprovalRequest(f"Unknown kind {kind!r}.")
    if kind == Kind.REFUND:
        if charge is None or charge.kind != LedgerEntry.Kind.CHARGE:
            raise InvalidApprovalRequest("A refund request names the charge it refunds.")
        if charge.account_id != account.pk or charge.credit_type_id != credit_type.pk:
            raise InvalidApprovalRequest("The charge is of another account or credit type.")
        if refund_reason not in RefundLog.Reason.values:
            raise InvalidApprovalRequest(f"Unknown refund reason {refund_reason!r}.")
    elif charge is not None or refund_reason:
        raise InvalidApprovalRequest("Only a refund names a charge.")
    now = now or timezone.now()
    with transaction.atomic():
        approval = ApprovalRequest.objects.create(
            kind=kind,
            account=account,
            credit_type=credit_type,
            amount=value,
            reason=reason,
            charge=charge,
            refund_reason=refund_reason,
            note=note,
            requested_by=requested_by,
            expires_at=now + settings.CREDITLEDGER_APPROVAL_TTL,
        )
        event_record(type="approval.requested", account=account, data=approval_event_data(approval))
    return approval


def approval_event_data(approval: ApprovalRequest) -> dict:
    """The `approval.requested` event's snapshot: what waits, for how much, until when (no staff names)."""
    return {
        "object": "approval_request",
        "id": approval.public_id,
        "kind": approval.kind,
        "status": approval.status,
        "account": approval.account.public_id,
        "credit_type": approval.credit_type.code,
        "amount": money_plain(approval.amount, approval.credit_type),
        "charge": approval.charge.public_id if approval.charge is not None else None,
        "expires_at": approval.expires_at.isoformat(),
    }


def approval_approve(
    *, approval: ApprovalRequest, approver: Any, note: str = "", now: datetime | None = None
) -> ApprovalRequest:
    """Approve a pending request: post it through its service, once, naming requester and approver.

    Raises ApproverPermissionRequired, SelfApprovalRefused, ApprovalNotPending
    (already decided: nothing is posted again), ApprovalExpired (it is then
    marked expired), or the service's own DomainError (the request stays pending).
    """
    return _decide(approval=approval, decider=approver, note=note, now=now, approve=True)


def approval_reject(
    *, approval: ApprovalRequest, approver: Any, note: str, now: datetime | None = None
) -> ApprovalRequest:
    """Reject a pending request with a note; nothing is posted. Same refusals as `approval_approve`."""
    if not note.strip():
        raise InvalidApprovalRequest("Say why the request is rejected.")
    return _decide(approval=approval, decider=approver, note=note, now=now, approve=False)


def _decide(*, approval: ApprovalRequest, decider: Any, note: str, now: datetime | None, approve: bool):
    if not decider.has_perm(APPROVE_PERMISSION):
        raise ApproverPermissionRequired()
    expired = False
    with transaction.atomic():
        # The lock that makes a decision happen once: every decider of this
        # request queues here, and each re-reads its status after the previous one committed.
        locked = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .select_related("account", "credit_type", "requested_by", "charge__account", "charge__credit_type")
            .get(pk=approval.pk)
        )
        if locked.status != Status.PENDING:
            raise ApprovalNotPending(f"{locked.public_id} is already {locked.status}.", status=locked.status)
        if locked.requested_by_id == decider.pk:
            raise SelfApprovalRefused()
        now = now or timezone.now()
        if locked.expires_at <= now:
            locked.status, locked.decided_at = Status.EXPIRED, now
            locked.save(update_fields=["status", "decided_at"])
            expired = True  # raised after COMMIT, so the expiry is kept
        else:
            if approve:
                locked.ledger_entry, locked.refund_log = _post(locked, approver=decider)
            locked.status = Status.APPROVED if approve else Status.REJECTED
            locked.decided_by, locked.decided_at, locked.decision_note = decider, now, note
            locked.save(
                update_fields=["status", "decided_by", "decided_at", "decision_note", "ledger_entry", "refund_log"]
            )
    if expired:
        raise ApprovalExpired(f"{locked.public_id} expired at {locked.expires_at:%Y-%m-%d %H:%M %Z}.")
    return locked


def _post(approval: ApprovalRequest, *, approver: Any) -> tuple[LedgerEntry, RefundLog | None]:
    """Run the request's service, as the requester with the approver beside them."""
    actor = Actor(user=approval.requested_by, approver=approver)
    metadata = {"source": "admin", "approval": approval.public_id}
    if approval.kind == Kind.GRANT:
        entry = grant_create(
            account=approval.account,
            credit_type=approval.credit_type,
            amount=approval.amount,
            reason=approval.reason,
            actor=actor,
            metadata=metadata,
        )
        return entry, None
    if approval.kind == Kind.ADJUSTMENT:
        entry = adjustment_create(
            account=approval.account,
            credit_type=approval.credit_type,
            amount=approval.amount,
            reason=approval.reason,
            actor=actor,
            metadata=metadata,
        )
        return entry, None
    log = refund_issue(
        charge=approval.charge,
        amount=approval.amount,
        reason=approval.refund_reason,
        note=approval.note,
        metadata=metadata,
        actor=actor,
    )
    return log.refund_entry, log


def approvals_expire_due(*, now: datetime | None = None) -> int:
    """Mark every pending request past its expiry as expired; how many. Safe to run twice or in parallel.

    A conditional UPDATE: a request being approved right now is locked, so
    this waits for it, then finds it no longer pending and leaves it alone.
    """
    now = now or timezone.now()
    return ApprovalRequest.objects.filter(status=Status.PENDING, expires_at__lte=now).update(
        status=Status.EXPIRED, decided_at=now
    )
