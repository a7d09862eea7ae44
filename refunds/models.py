"""The refund log: every refund of a charge, automatic or by staff.

A refund is a ledger entry (kind `refund`, `related_entry` = the charge) plus
one `RefundLog` row saying why, from which route, with which error and by
whom. `refunds.services.refund_issue` writes both, with the wallet change, in
one transaction. The database refuses refunds that would exceed their charge
(trigger in migration 0002) and edits or deletions of the log.

The fields follow seed 003's CreditRefundLog: created_at, account, credit
type, amount, reason, api_route, error_message, the refunded charge (its
`transactionId`) and metadata, plus the actor.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.ids import public_id
from accounts.models import Account, ApiKey
from billing.models import LedgerEntry
from config.money import MoneyField, money_display
from pricing.models import CreditType


def refund_public_id() -> str:
    return public_id("rfd", 24)


class RefundLog(models.Model):
    class Reason(models.TextChoices):
        API_ERROR = "api_error", "API error"
        TIMEOUT = "timeout", "Timeout"
        BACKEND_FAILURE = "backend_failure", "Backend failure"
        UNCAUGHT_EXCEPTION = "uncaught_exception", "Uncaught exception"
        PARSING_ERROR = "parsing_error", "Parsing error"
        CUSTOMER_SERVICE = "customer_service", "Customer service"
        DUPLICATE = "duplicate", "Duplicate"
        OTHER = "other", "Other"

    # Foreign keys get an index of their own only where a query needs one that
    # the composite indexes below do not lead with (docs/performance.md, "Indexes").
    public_id = models.CharField(max_length=32, default=refund_public_id, editable=False)  # refundlog_public_id_unique
    created_at = models.DateTimeField(auto_now_add=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="refunds", db_index=False)
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+", db_index=False)
    amount = MoneyField()
    reason = models.CharField(max_length=32, choices=Reason.choices)
    api_route = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    # Indexed: a charge's earlier refunds (the admin's refund form).
    charge = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="refund_logs")
    # Unique (one log per refund entry); its index also finds the log of an entry.
    refund_entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="refund_log")
    metadata = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=1000, blank=True, default="", help_text="Staff note.")
    idempotency_key = models.CharField(max_length=255, blank=True, default="")
    actor_api_key = models.ForeignKey(  # keys are revoked, never deleted: no index
        ApiKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_user = models.ForeignKey(  # refundlog_actor_user
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The second staff user who approved actor_user's refund (four-eyes approvals).
    approver_user = models.ForeignKey(  # refundlog_approver_user
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            # An account's refunds (GET /accounts/{id}/refunds, with ?since/?until).
            models.Index(fields=["account", "created_at"], name="refundlog_account_created"),
            # The stats filtered by credit type over a time window.
            models.Index(fields=["credit_type", "created_at"], name="refundlog_type_created"),
            # The stats and the admin's route filter (?api_route=) over a time window.
            models.Index(fields=["api_route", "created_at"], name="refundlog_route_created"),
            # The stats' and the admin's time window alone (?since/?until, date_hierarchy).
            models.Index(fields=["created_at"], name="refundlog_created_at"),
            # Django's PROTECT check when a staff user is deleted; API refunds have no user.
            models.Index(fields=["actor_user"], name="refundlog_actor_user", condition=Q(actor_user__isnull=False)),
            models.Index(
                fields=["approver_user"], name="refundlog_approver_user", condition=Q(approver_user__isnull=False)
            ),
        ]
        constraints = [
            # Also the admin's search =public_id.
            models.UniqueConstraint(fields=["public_id"], name="refundlog_public_id_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refundlog_amount_positive"),
            models.CheckConstraint(
                condition=Q(
                    reason__in=[
                        "api_error",
                        "timeout",
                        "backend_failure",
                        "uncaught_exception",
                        "parsing_error",
                        "customer_service",
                        "duplicate",
                        "other",
                    ]
                ),
                name="refundlog_reason_valid",
            ),
            models.CheckConstraint(
                condition=Q(actor_api_key__isnull=True) | Q(actor_user__isnull=True),
                name="refundlog_one_actor",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.reason} {money_display(self.amount, self.credit_type)}"

    @property
    def actor_display(self) -> str:
        if self.actor_user_id and self.approver_user_id:
            return f"staff: {self.actor_user}, approved by {self.approver_user}"
        if self.actor_user_id:
            return f"staff: {self.actor_user}"
        if self.actor_api_key_id:
            return f"key: {self.actor_api_key.prefix}"
        return "system"
