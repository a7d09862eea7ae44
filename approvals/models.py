"""Four-eyes approvals: staff money actions above a threshold wait for a second staff user.

A staff grant, adjustment or refund made in the admin whose amount is above
its credit type's threshold (`ApprovalThreshold`, else the
CREDITLEDGER_APPROVAL_THRESHOLD default) is stored as a pending
`ApprovalRequest` instead of posting. Another staff user with the
`approvals.approve_request` permission approves it (the same service then
posts it once, recording requester and approver on the ledger entry) or
rejects it, each with a note; undecided requests expire after
CREDITLEDGER_APPROVAL_TTL.

The database keeps the rules the service decides by: a request's decision
fields match its status, the decider is never the requester, and a decided
request is final (trigger in migration 0001).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.ids import public_id
from accounts.models import Account
from billing.models import LedgerEntry
from config.money import MoneyField, money_display
from pricing.models import CreditType
from refunds.models import RefundLog

APPROVE_PERMISSION = "approvals.approve_request"


def approval_public_id() -> str:
    return public_id("apr", 20)


class ApprovalRequest(models.Model):
    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        ADJUSTMENT = "adjustment", "Adjustment"
        REFUND = "refund", "Refund"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    public_id = models.CharField(max_length=32, default=approval_public_id, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="approval_requests")
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+", db_index=False)
    amount = MoneyField(help_text="Signed for an adjustment; positive for a grant or a refund.")
    # A grant's or an adjustment's reason (the entry's description).
    reason = models.CharField(max_length=1000, blank=True, default="")
    # A refund: the charge, the refund log's reason code and the staff note.
    charge = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    refund_reason = models.CharField(max_length=32, blank=True, default="", choices=RefundLog.Reason.choices)
    note = models.CharField(max_length=1000, blank=True, default="")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # Who decided, when and why; an expired request has no decider.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=1000, blank=True, default="")
    # What approving posted: the ledger entry, and for a refund its log row.
    ledger_entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="approval_request"
    )
    refund_log = models.OneToOneField(
        RefundLog, null=True, blank=True, on_delete=models.PROTECT, related_name="approval_request"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The pending list (dashboard, admin filter) newest first, and the expiry sweep.
            models.Index(fields=["status", "-id"], name="approval_status_id"),
            models.Index(fields=["expires_at"], name="approval_pending_expires", condition=Q(status="pending")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["public_id"], name="approval_public_id_unique"),
            models.CheckConstraint(condition=Q(kind__in=["grant", "adjustment", "refund"]), name="approval_kind_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected", "expired"]), name="approval_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind="adjustment", amount__lt=0) | Q(amount__gt=0), name="approval_amount_sign"
            ),
            models.CheckConstraint(
                condition=(Q(kind="refund", charge__isnull=False) & ~Q(refund_reason=""))
                | (~Q(kind="refund") & Q(charge__isnull=True)),
                name="approval_refund_names_charge",
            ),
            # Four eyes: whoever decides is not whoever asked.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")), name="approval_four_eyes"
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="pending", decided_by__isnull=True, decided_at__isnull=True, ledger_entry__isnull=True)
                    | Q(
                        status="approved",
                        decided_by__isnull=False,
                        decided_at__isnull=False,
                        ledger_entry__isnull=False,
                    )
                    | Q(
                        status="rejected", decided_by__isnull=False, decided_at__isnull=False, ledger_entry__isnull=True
                    )
                    | Q(status="expired", decided_by__isnull=True, decided_at__isnull=False, ledger_entry__isnull=True)
                ),
                name="approval_decision_matches_status",
            ),
        ]
        permissions = [("approve_request", "Can approve or reject four-eyes requests")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.kind} {money_display(self.amount, self.credit_type)} {self.credit_type.code}"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING


class ApprovalThreshold(models.Model):
    """A credit type's approval threshold, set by staff; overrides CREDITLEDGER_APPROVAL_THRESHOLD."""

    credit_type = models.OneToOneField(CreditType, on_delete=models.PROTECT, related_name="+")
    threshold = MoneyField(
        null=True,
        blank=True,
        help_text="Staff grants, adjustments and refunds above this amount need a second staff user's approval. "
        "Empty: none do (whatever the environment default says).",
    )
    note = models.CharField(max_length=1000, blank=True, default="", help_text="Why this threshold.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["credit_type__code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | Q(threshold__gte=0), name="approval_threshold_non_negative"
            ),
        ]

    def __str__(self) -> str:
        if self.threshold is None:
            return f"{self.credit_type.code}: no approval"
        return f"{self.credit_type.code}: above {money_display(self.threshold, self.credit_type)}"
