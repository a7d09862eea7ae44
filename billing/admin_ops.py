"""Admin for operations: reconciliation runs and the outbox. Imported by billing/admin.py.

Both are records, read-only here. Reconciliation never repairs: staff correct
a wallet with an `adjustment` (Accounts admin, with a reason). An outbox
message that gave up can be retried with the "retry now" action, which needs
the `billing.change_outboxmessage` permission.

"Run now" on the runs list queues `billing.tasks.reconcile` (it needs
`billing.add_reconciliationrun`). There is no result backend, so the task is
given a trigger naming this click (`admin <token>`); the page it lands on
waits for a run with that trigger, then shows it.
"""

from __future__ import annotations

import secrets

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.models import LedgerCheckpoint, OutboxMessage, ReconciliationDiscrepancy, ReconciliationRun
from billing.outbox import outbox_message_retry
from billing.tasks import reconcile
from config.admin_money import money_column

RUN_NOW_PERMISSION = "billing.add_reconciliationrun"


class _ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReconciliationDiscrepancyInline(_ReadOnly, admin.TabularInline):
    model = ReconciliationDiscrepancy
    extra = 0
    fields = [
        "kind",
        "wallet_link",
        "account_link",
        "ledger_entry",
        "hold_id",
        "lot_id",
        "expected_money",
        "actual_money",
        "detail",
    ]
    readonly_fields = fields
    show_change_link = False
    expected_money = money_column("expected", credit_type="wallet__credit_type")
    actual_money = money_column("actual", credit_type="wallet__credit_type")
    # A run stores at most CREDITLEDGER_RECONCILE_MAX_RECORDED rows; the page shows the first 200.
    max_num = 200

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("wallet__account", "wallet__credit_type", "ledger_entry")

    @admin.display(description="wallet")
    def wallet_link(self, discrepancy: ReconciliationDiscrepancy):
        if discrepancy.wallet is None:
            return "-"
        url = reverse("admin:billing_wallet_change", args=[discrepancy.wallet_id])
        return format_html('<a href="{}">{}</a>', url, discrepancy.wallet)

    @admin.display(description="account (correct with an adjustment there)")
    def account_link(self, discrepancy: ReconciliationDiscrepancy):
        if discrepancy.wallet is None:
            return "-"
        url = reverse("admin:accounts_account_change", args=[discrepancy.wallet.account_id])
        return format_html('<a href="{}">{}</a>', url, discrepancy.wallet.account)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(_ReadOnly, admin.ModelAdmin):
    """Every run of `manage.py reconcile` and the nightly task, newest first."""

    list_display = [
        "id",
        "started_at",
        "status",
        "account",
        "trigger",
        "wallets_checked",
        "discrepancy_count",
        "truncated",
        "finished_at",
    ]
    list_filter = ["status", "trigger", ("started_at", admin.DateFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["=account__public_id", "=account__external_id"]
    date_hierarchy = "started_at"
    fields = [*list_display, "checkpoint_summary", "error"]
    readonly_fields = fields
    inlines = [ReconciliationDiscrepancyInline]

    @admin.display(description="checkpoint")
    def checkpoint_summary(self, run: ReconciliationRun) -> str:
        """The signed chain heads this run recorded (full runs only; billing/checkpoints.py)."""
        checkpoint = LedgerCheckpoint.objects.filter(run=run).first()
        if checkpoint is None:
            return "-"
        return (
            f"#{checkpoint.pk}: {checkpoint.wallets} wallets, {checkpoint.entries} entries, "
            f"digest {checkpoint.digest}, signed with key {checkpoint.key_id}"
        )

    change_list_template = "admin/billing/reconciliationrun/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_run_now": request.user.has_perm(RUN_NOW_PERMISSION)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("run-now/", self.admin_site.admin_view(self.run_now_view), name="billing_reconciliationrun_run_now"),
            path(
                "run-now/<slug:token>/",
                self.admin_site.admin_view(self.run_wait_view),
                name="billing_reconciliationrun_run_wait",
            ),
            *super().get_urls(),
        ]

    def run_now_view(self, request):
        """POST: queue a reconciliation of every wallet, then wait for its run."""
        if not request.user.has_perm(RUN_NOW_PERMISSION):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        token = secrets.token_hex(8)
        reconcile.delay(trigger=f"admin {token}")
        return HttpResponseRedirect(reverse("admin:billing_reconciliationrun_run_wait", args=[token]))

    def run_wait_view(self, request, token: str):
        """The run that click queued, once started (its page: running, clean or drift); until then, a reloading page."""
        if not request.user.has_perm(RUN_NOW_PERMISSION):
            raise PermissionDenied
        run = ReconciliationRun.objects.filter(trigger=f"admin {token}").order_by("-id").first()
        if run is not None:
            return HttpResponseRedirect(reverse("admin:billing_reconciliationrun_change", args=[run.pk]))
        context = {**self.admin_site.each_context(request), "title": "Reconciliation queued", "opts": self.opts}
        return TemplateResponse(request, "admin/billing/reconciliationrun/waiting.html", context)


@admin.register(ReconciliationDiscrepancy)
class ReconciliationDiscrepancyAdmin(_ReadOnly, admin.ModelAdmin):
    """All discrepancies across runs, to find every run that saw a given wallet drift."""

    list_display = [
        "id",
        "run",
        "kind",
        "wallet",
        "ledger_entry",
        "hold_id",
        "lot_id",
        "expected_money",
        "actual_money",
        "detail",
    ]
    list_filter = ["kind", ("run__started_at", admin.DateFieldListFilter)]
    list_select_related = ["run", "wallet__account", "wallet__credit_type", "ledger_entry"]
    search_fields = ["=wallet__account__public_id", "=wallet__account__external_id", "=ledger_entry__public_id"]
    fields = ["run", "kind", "wallet", "ledger_entry", "hold_id", "lot_id", "expected_money", "actual_money", "detail"]
    readonly_fields = fields
    expected_money = money_column("expected", credit_type="wallet__credit_type")
    actual_money = money_column("actual", credit_type="wallet__credit_type")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["id", "topic", "status", "attempts", "available_at", "created_at", "dispatched_at", "error_short"]
    list_filter = ["status", "topic", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=id", "topic"]
    fields = [
        "topic",
        "status",
        "attempts",
        "available_at",
        "created_at",
        "dispatched_at",
        "payload",
        "last_error",
    ]
    readonly_fields = fields
    actions = ["retry_now"]

    @admin.display(description="last error")
    def error_short(self, message: OutboxMessage) -> str:
        return message.last_error[:80]

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("billing.change_outboxmessage")

    @admin.action(description="Retry now (failed or backing off)", permissions=["retry"])
    def retry_now(self, request, queryset):
        retried = 0
        for message in queryset.exclude(status=OutboxMessage.Status.DISPATCHED):
            outbox_message_retry(message=message)
            retried += 1
        self.message_user(request, f"{retried} message(s) queued for dispatch.", messages.SUCCESS)
