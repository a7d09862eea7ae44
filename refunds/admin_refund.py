"""The staff refund, added to the ledger's admin (billing.admin.LedgerEntryAdmin) by refunds/admin.py.

Two ways in, one form, one service call:

* the "Refund" button on a charge's page opens `<entry>/refund/`, a form with
  the amount (default: what remains refundable), the reason and a note;
* the "Refund selected charges" action on the ledger list asks for reason
  and note on an intermediate page (Django's delete_selected pattern) and
  refunds what remains of each selected charge, or an amount if one is chosen.

Both need the `billing.refund_charge` permission, call
`refunds.services.refund_issue` with the staff user as actor (unless a gate,
billing.admin_gates, holds the refund back: four-eyes approvals above a
threshold), and report the result with `message_user`. refunds/admin.py registers a subclass of
billing's `LedgerEntry` admin with this mixin in place of billing's own:
billing, the lower layer, knows nothing of refunds.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from billing.admin_gates import StaffMoneyAction, staff_money_gate
from billing.models import LedgerEntry
from billing.services import Actor
from config.errors import DomainError
from config.money import money_display
from refunds.forms import RefundChargeForm
from refunds.services import charge_refundable, refund_issue

REFUND_PERMISSION = "billing.refund_charge"


class ChargeRefundAdminMixin:
    """Adds the refund button, form and action to the ledger entry admin."""

    actions = ["refund_charges"]
    change_form_template = "admin/refunds/ledgerentry_change_form.html"  # the Refund button

    def has_refund_charge_permission(self, request) -> bool:
        return request.user.has_perm(REFUND_PERMISSION)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="{}_{}_refund".format(*info),
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        entry = LedgerEntry.objects.filter(pk=object_id).select_related("credit_type").first()
        if entry is not None and entry.kind == LedgerEntry.Kind.CHARGE:
            extra_context.update(
                refundable=charge_refundable(entry),
                can_refund=self.has_refund_charge_permission(request),
                refunds_url=reverse("admin:refunds_refundlog_changelist") + f"?q={entry.public_id}",
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def _entry_url(self, entry: LedgerEntry) -> str:
        info = self.opts.app_label, self.opts.model_name
        return reverse("admin:{}_{}_change".format(*info), args=[quote(entry.pk)], current_app=self.admin_site.name)

    def _next_url(self, request) -> str | None:
        """Where the form was opened from (the account page's Refund button), if it is on this site."""
        url = request.POST.get("next") or request.GET.get("next")
        if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=False):
            return url
        return None

    def refund_view(self, request, object_id: str):
        if not self.has_refund_charge_permission(request):
            raise PermissionDenied
        charge = get_object_or_404(LedgerEntry.objects.select_related("account", "credit_type", "wallet"), pk=object_id)
        if charge.kind != LedgerEntry.Kind.CHARGE:
            self.message_user(request, "Only charges can be refunded.", messages.ERROR)
            return HttpResponseRedirect(self._entry_url(charge))
        form = RefundChargeForm(request.POST or None, credit_type=charge.credit_type)
        if request.method == "POST" and form.is_valid():
            try:
                held = staff_money_gate(request, _refund_action(charge, form.cleaned_data))
                if held is not None:
                    self.message_user(request, held, messages.INFO)
                    return HttpResponseRedirect(self._next_url(request) or self._entry_url(charge))
                log = refund_issue(
                    charge=charge,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    note=form.cleaned_data["note"],
                    metadata={"source": "admin"},
                    actor=Actor(user=request.user),
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                credit_type = charge.credit_type
                self.message_user(
                    request,
                    f"Refunded {money_display(log.amount, credit_type)} {credit_type.code} of {charge.public_id} "
                    f"({log.public_id}); {money_display(log.refundable_after, credit_type)} remains refundable.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._next_url(request) or self._entry_url(charge))
        refundable = charge_refundable(charge)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Refund {charge.public_id}",
            "opts": self.opts,
            "original": charge,
            "charge": charge,
            "charged": -charge.amount,
            "refundable": refundable,
            "refunded": -charge.amount - refundable,
            "prior_refunds": charge.refund_logs.select_related("actor_user", "actor_api_key").order_by("id"),
            "form": form,
            "entry_url": self._entry_url(charge),
            "next_url": self._next_url(request),
        }
        return TemplateResponse(request, "admin/refunds/refund_charge.html", context)

    @admin.action(description="Refund selected charges", permissions=["refund_charge"])
    def refund_charges(self, request, queryset):
        if not self.has_refund_charge_permission(request):
            raise PermissionDenied
        charges = list(queryset.select_related("account", "credit_type").order_by("id"))
        single = charges[0] if len(charges) == 1 else None
        form = RefundChargeForm(
            request.POST if "apply" in request.POST else None, credit_type=single.credit_type if single else None
        )
        if "apply" in request.POST and form.is_valid():
            if form.cleaned_data["amount"] is not None and single is None:
                form.add_error("amount", "An amount can only be given for one charge at a time.")
            else:
                self._refund_each(request, charges, form.cleaned_data)
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund charges",
            "opts": self.opts,
            "form": form,
            "charges": [(c, charge_refundable(c)) for c in charges],
            "action": request.POST.get("action"),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/refunds/refund_charges_action.html", context)

    def _refund_each(self, request, charges: list[LedgerEntry], data: dict) -> None:
        done = []
        for charge in charges:
            try:
                held = staff_money_gate(request, _refund_action(charge, data))
                if held is not None:
                    self.message_user(request, held, messages.INFO)
                    continue
                log = refund_issue(
                    charge=charge,
                    amount=data["amount"],
                    reason=data["reason"],
                    note=data["note"],
                    metadata={"source": "admin"},
                    actor=Actor(user=request.user),
                )
                done.append(
                    f"{money_display(log.amount, charge.credit_type)} {charge.credit_type.code} of {charge.public_id}"
                )
            except DomainError as error:
                self.message_user(request, f"{charge.public_id}: {error.message}", messages.ERROR)
        if done:
            self.message_user(request, f"Refunded {'; '.join(done)}.", messages.SUCCESS)


def _refund_action(charge: LedgerEntry, data: dict) -> StaffMoneyAction:
    """The refund the form asks for; no amount means all that remains refundable now."""
    amount = data["amount"] if data["amount"] is not None else charge_refundable(charge)
    return StaffMoneyAction(
        kind=LedgerEntry.Kind.REFUND,
        account=charge.account,
        credit_type=charge.credit_type,
        amount=amount,
        charge=charge,
        refund_reason=data["reason"],
        note=data["note"],
    )
