"""Reads for four-eyes approvals: thresholds, and the requests waiting for a decision."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalThreshold
from pricing.models import CreditType


def approval_threshold(*, credit_type: CreditType) -> Decimal | None:
    """The amount above which a staff action in `credit_type` needs approval; None: never.

    The admin's `ApprovalThreshold` row for the credit type wins (an empty
    threshold there means none); else CREDITLEDGER_APPROVAL_THRESHOLD's entry.
    """
    row = ApprovalThreshold.objects.filter(credit_type=credit_type).only("threshold").first()
    if row is not None:
        return row.threshold
    return settings.CREDITLEDGER_APPROVAL_THRESHOLD.get(credit_type.code)


def approval_needed(*, credit_type: CreditType, amount: Decimal) -> bool:
    """Whether a staff grant, adjustment or refund of `amount` (its size; an adjustment's sign is ignored) waits."""
    threshold = approval_threshold(credit_type=credit_type)
    return threshold is not None and abs(amount) > threshold


def pending_approvals(*, limit: int | None = None, now: datetime | None = None) -> QuerySet[ApprovalRequest]:
    """Requests still waiting for a decision (pending and not past their expiry), newest first.

    For the admin dashboard (`limit` rows) and anything else that lists them.
    """
    queryset = (
        approvals_waiting(ApprovalRequest.objects.all(), now=now)
        .select_related("account", "credit_type", "requested_by", "charge")
        .order_by("-id")
    )
    return queryset[:limit] if limit is not None else queryset


def approvals_waiting(queryset: QuerySet[ApprovalRequest], *, now: datetime | None = None) -> QuerySet[ApprovalRequest]:
    """The requests of `queryset` that can still be decided: pending and not past their expiry.

    A request past its expiry stays `pending` until the sweep marks it
    expired; it cannot be approved, so it does not count as waiting. The
    dashboard's count and the admin's "Waiting for a decision" filter both
    use this, so the link lists exactly what the count counts.
    """
    return queryset.filter(status=ApprovalRequest.Status.PENDING, expires_at__gt=now or timezone.now())
