"""Admin for four-eyes approvals: the requests, their decision, and the thresholds.

Requests are records: never added, edited or deleted here. A pending
request's page carries the decision form (a note, Approve, Reject) for a
staff user with `approvals.approve_request` who is not its requester; the
buttons POST to `<id>/approve/` and `<id>/reject/`, which call the services.
A decided request's page is read-only, with links to what it posted.

The gate: billing's staff grant and adjustment and refunds' staff refund ask
`billing.admin_gates.staff_money_gate` before posting; the gate registered
here turns an action above its credit type's threshold into a pending request.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.models import Account
from approvals.forms import ApprovalDecisionForm
from approvals.models import APPROVE_PERMISSION, ApprovalRequest, ApprovalThreshold
from approvals.selectors import approval_needed, approvals_waiting, pending_approvals
from approvals.services import approval_approve, approval_reject, approval_request_create
from billing.admin import CompactColumnsMixin, account_panel_register
from billing.admin_gates import StaffMoneyAction, staff_money_gate_register
from config.admin_money import MoneyFormMixin, money_column
from config.admin_search import admin_search_register
from config.errors import DomainError
from config.money import money_display

# Who may see the requests: approvers, and staff who may make them.
REQUESTER_PERMISSIONS = ("accounts.grant_credits", "billing.adjust_balance", "billing.refund_charge")
KIND_VERB = {"grant": "Grant", "adjustment": "Adjustment", "refund": "Refund"}


def _admin_url(name: str, pk, site: str = "admin") -> str:
    return reverse(f"admin:{name}", args=[quote(pk)], current_app=site)


def approval_summary(approval: ApprovalRequest) -> SafeString:
    """ "Grant of 5,000.00 credits to acc_…" (linked), for messages and pages."""
    amount = f"{money_display(approval.amount, approval.credit_type)} {approval.credit_type.code}"
    account = format_html(
        '<a href="{}">{}</a>',
        _admin_url("accounts_account_change", approval.account_id),
        approval.account.public_id,
    )
    if approval.kind == ApprovalRequest.Kind.REFUND:
        charge = format_html(
            '<a href="{}">{}</a>',
            _admin_url("billing_ledgerentry_change", approval.charge_id),
            approval.charge.public_id,
        )
        return format_html("Refund of {} of {} ({})", amount, charge, account)
    return format_html("{} of {} to {}", KIND_VERB[approval.kind], amount, account)


def _linked(obj, url_name: str):
    """A related object's public id linking to its admin page; "-" when there is none."""
    if obj is None:
        return "-"
    return format_html('<a href="{}">{}</a>', _admin_url(url_name, obj.pk), obj.public_id)


def _request_link(approval: ApprovalRequest) -> SafeString:
    return format_html(
        '<a href="{}">{}</a>', _admin_url("approvals_approvalrequest_change", approval.pk), approval.public_id
    )


# --- the gate -------------------------------------------------------------------


def _four_eyes_gate(request, action: StaffMoneyAction) -> SafeString | None:
    """Above its credit type's threshold, the action becomes a pending request (nothing posts)."""
    if not approval_needed(credit_type=action.credit_type, amount=action.amount):
        return None
    approval = approval_request_create(
        kind=action.kind,
        account=action.account,
        credit_type=action.credit_type,
        amount=action.amount,
        reason=action.reason,
        charge=action.charge,
        refund_reason=action.refund_reason,
        note=action.note,
        requested_by=request.user,
    )
    return format_html(
        "{} is waiting for approval by another staff user ({}, expires {}).",
        approval_summary(approval),
        _request_link(approval),
        timezone.localtime(approval.expires_at).strftime("%Y-%m-%d %H:%M"),
    )


staff_money_gate_register(_four_eyes_gate)


# --- the requests ----------------------------------------------------------------


class RequestedByFilter(admin.RelatedFieldListFilter):
    """Only the staff users who have made requests."""

    def field_choices(self, field, request, model_admin):
        return field.get_choices(include_blank=False, limit_choices_to={"pk__in": _requester_ids()})


def _requester_ids():
    return ApprovalRequest.objects.values("requested_by").distinct()


class WaitingFilter(admin.SimpleListFilter):
    """Requests that can still be decided: pending and not past their expiry (`approvals_waiting`).

    The status filter's "Pending" also lists requests past their expiry that
    the sweep has not marked yet; this one lists what the dashboard counts.
    """

    title = "decision"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("yes", "Waiting for a decision")]

    def queryset(self, request, queryset):
        return approvals_waiting(queryset) if self.value() == "yes" else queryset


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(CompactColumnsMixin, admin.ModelAdmin):
    list_display = [
        "public_id",
        "status",
        "kind",
        "amount_money",
        "credit_type_code",
        "account_short",
        "requested_by",
        "expires_short",
        "decided_by",
    ]
    list_select_related = ["account", "credit_type", "requested_by", "decided_by"]
    list_filter = [WaitingFilter, "status", "kind", "credit_type", ("requested_by", RequestedByFilter)]
    search_fields = ["=public_id", "=account__public_id", "=account__external_id", "=charge__public_id"]
    list_per_page = 50
    fields = [
        "public_id",
        "status",
        "kind",
        "account",
        "credit_type",
        "amount_money",
        "reason",
        "charge_link",
        "refund_reason",
        "note",
        "requested_by",
        "created_at",
        "expires_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "ledger_entry_link",
        "refund_log_link",
    ]
    readonly_fields = fields
    amount_money = money_column("amount")
    REFUND_ONLY = ("charge_link", "refund_reason", "note", "refund_log_link")
    change_form_template = "admin/approvals/approvalrequest/change_form.html"

    # Records: nothing is added, edited or deleted here; decisions go through the services.
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        return (
            super().has_view_permission(request, obj)
            or user.has_perm(APPROVE_PERMISSION)
            or any(user.has_perm(p) for p in REQUESTER_PERMISSIONS)
        )

    def has_module_permission(self, request) -> bool:
        return super().has_module_permission(request) or self.has_view_permission(request)

    def get_fields(self, request, obj=None):
        """Only what the request's kind has: a refund's charge and reason code, or a grant's or adjustment's reason."""
        if obj is None:
            return self.fields
        if obj.kind == ApprovalRequest.Kind.REFUND:
            return [field for field in self.fields if field != "reason"]
        return [field for field in self.fields if field not in self.REFUND_ONLY]

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    @admin.display(description="expires", ordering="expires_at")
    def expires_short(self, approval: ApprovalRequest) -> str:
        return timezone.localtime(approval.expires_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="charge")
    def charge_link(self, approval: ApprovalRequest):
        return _linked(approval.charge, "billing_ledgerentry_change")

    @admin.display(description="ledger entry")
    def ledger_entry_link(self, approval: ApprovalRequest):
        return _linked(approval.ledger_entry, "billing_ledgerentry_change")

    @admin.display(description="refund log")
    def refund_log_link(self, approval: ApprovalRequest):
        return _linked(approval.refund_log, "refunds_refundlog_change")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="approvals_approvalrequest_approve",
            ),
            path(
                "<path:object_id>/reject/",
                self.admin_site.admin_view(self.reject_view),
                name="approvals_approvalrequest_reject",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        approval = (
            ApprovalRequest.objects.filter(pk=object_id)
            .select_related("account", "credit_type", "charge", "requested_by", "decided_by")
            .first()
            if str(object_id).isdigit()
            else None
        )
        if approval is not None:
            now = timezone.now()
            extra_context.update(
                approval=approval,
                summary=approval_summary(approval),
                is_open=approval.is_pending and approval.expires_at > now,
                is_own=approval.requested_by_id == request.user.pk,
                can_decide=self.has_approve_permission(request),
                decision_form=ApprovalDecisionForm(),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def approve_view(self, request, object_id: str):
        return self._decide(request, object_id, approve=True)

    def reject_view(self, request, object_id: str):
        return self._decide(request, object_id, approve=False)

    def _decide(self, request, object_id: str, *, approve: bool):
        if not self.has_approve_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        approval = get_object_or_404(
            ApprovalRequest.objects.select_related("account", "credit_type", "charge"),
            pk=object_id if str(object_id).isdigit() else None,
        )
        page = _admin_url("approvals_approvalrequest_change", approval.pk, self.admin_site.name)
        form = ApprovalDecisionForm(request.POST)
        if not form.is_valid():
            self.message_user(request, "The note is too long.", messages.ERROR)
            return HttpResponseRedirect(page)
        note = form.cleaned_data["note"]
        try:
            if approve:
                decided = approval_approve(approval=approval, approver=request.user, note=note)
            else:
                decided = approval_reject(approval=approval, approver=request.user, note=note)
        except DomainError as error:
            self.message_user(request, format_html("{}: {}", approval.public_id, error.message), messages.ERROR)
            return HttpResponseRedirect(page)
        self.message_user(request, _decided_message(decided), messages.SUCCESS)
        return HttpResponseRedirect(page)


def _decided_message(approval: ApprovalRequest) -> SafeString:
    """ "Approved apr_…: Grant of 5,000.00 credits to acc_… posted as txn_…; balance 5,100.00." """
    if approval.status == ApprovalRequest.Status.REJECTED:
        return format_html("Rejected {}: {}. Nothing was posted.", _request_link(approval), approval_summary(approval))
    entry = approval.ledger_entry
    return format_html(
        'Approved {}: {} posted as <a href="{}">{}</a>; balance {} {}.',
        _request_link(approval),
        approval_summary(approval),
        _admin_url("billing_ledgerentry_change", entry.pk),
        entry.public_id,
        money_display(entry.balance_after, approval.credit_type),
        approval.credit_type.code,
    )


admin_search_register(ApprovalRequest, ["public_id"], prefix="apr_")


# --- thresholds ----------------------------------------------------------------------


@admin.register(ApprovalThreshold)
class ApprovalThresholdAdmin(MoneyFormMixin, admin.ModelAdmin):
    """Per credit type, the amount above which staff money actions need approval (overrides the environment)."""

    list_display = ["credit_type", "threshold_money", "environment_default", "note", "updated_at"]
    list_select_related = ["credit_type"]
    readonly_fields = ["updated_at"]
    threshold_money = money_column("threshold", description="threshold")

    @admin.display(description="CREDITLEDGER_APPROVAL_THRESHOLD")
    def environment_default(self, row: ApprovalThreshold) -> str:
        value = settings.CREDITLEDGER_APPROVAL_THRESHOLD.get(row.credit_type.code)
        return "-" if value is None else money_display(value, row.credit_type)


# --- the account page ------------------------------------------------------------------


def _approvals_panel(request, account: Account) -> str | None:
    """The account's requests waiting for approval (registered with billing's account admin)."""
    waiting = list(pending_approvals().filter(account=account)[:10])
    if not waiting:
        return None
    return render_to_string("admin/accounts/account/panels/approvals.html", {"approvals": waiting})


account_panel_register(_approvals_panel, order=5)
