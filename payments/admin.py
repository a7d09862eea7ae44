"""Payments in the admin: packs, purchases, Stripe events (with reprocess), auto-recharge settings.

Purchases and events are records: read-only, changed only by the services
(a reprocess runs the event's handler again, which is idempotent). The
account page gets a panel with the account's purchases, unrecovered credits
and auto-recharge state.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html

from billing.admin import ReadOnlyAdminMixin, account_panel_register
from config.admin_money import MoneyFormMixin, money_column
from payments.currency import price_display
from payments.models import AutoRecharge, CreditPack, Purchase, StripeEvent
from payments.services.auto_recharge import auto_recharge_wallet_sync
from payments.services.events import stripe_event_process
from payments.stripe_api import dashboard_url


def _stripe_link(object_id: str) -> str:
    if not object_id:
        return "-"
    url = dashboard_url(object_id)
    return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, object_id) if url else object_id


@admin.register(CreditPack)
class CreditPackAdmin(MoneyFormMixin, admin.ModelAdmin):
    list_display = ["name", "public_id", "credit_type", "credits_money", "price", "stripe_price_id", "is_active"]
    list_select_related = ["credit_type"]
    list_filter = ["is_active", "credit_type", "currency"]
    search_fields = ["name", "=public_id", "=stripe_price_id"]
    readonly_fields = ["public_id", "created_at"]
    credits_money = money_column("credits")

    @admin.display(description="price", ordering="price_minor")
    def price(self, pack: CreditPack) -> str:
        return price_display(pack.price_minor, pack.currency)


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "public_id",
        "account",
        "kind",
        "status",
        "credits_money",
        "price",
        "unrecovered_money",
        "payment_intent_link",
        "created_at",
    ]
    list_select_related = ["account", "credit_type"]
    list_filter = ["status", "kind", "dispute_status", "credit_type"]
    search_fields = [
        "=public_id",
        "=dispute_id",
        "=account__public_id",
        "=stripe_payment_intent_id",
        "=stripe_checkout_session_id",
        "=stripe_charge_id",
        "=stripe_customer_id",
    ]
    fields = [
        "public_id",
        "account",
        "pack",
        "kind",
        "status",
        "credits_money",
        "price",
        "grant_entry",
        "checkout_session_link",
        "payment_intent_link",
        "charge_link",
        "customer_link",
        "refunded_minor",
        "clawed_back_money",
        "unrecovered_money",
        "dispute_link",
        "dispute_status",
        "dispute_hold",
        "failure_reason",
        "created_at",
        "paid_at",
    ]
    readonly_fields = fields
    credits_money = money_column("credits")
    clawed_back_money = money_column("clawed_back", description="clawed back")
    unrecovered_money = money_column("unrecovered", description="unrecovered")

    @admin.display(description="price", ordering="amount_minor")
    def price(self, purchase: Purchase) -> str:
        return price_display(purchase.amount_minor, purchase.currency)

    @admin.display(description="checkout session")
    def checkout_session_link(self, purchase: Purchase) -> str:
        return _stripe_link(purchase.stripe_checkout_session_id)

    @admin.display(description="payment intent")
    def payment_intent_link(self, purchase: Purchase) -> str:
        return _stripe_link(purchase.stripe_payment_intent_id)

    @admin.display(description="charge")
    def charge_link(self, purchase: Purchase) -> str:
        return _stripe_link(purchase.stripe_charge_id)

    @admin.display(description="dispute")
    def dispute_link(self, purchase: Purchase) -> str:
        return _stripe_link(purchase.dispute_id)

    @admin.display(description="customer")
    def customer_link(self, purchase: Purchase) -> str:
        return _stripe_link(purchase.stripe_customer_id)


class RetryFilter(admin.SimpleListFilter):
    """Failed events: those the sweep will retry, and those it gave up on (they need a person)."""

    title = "retry"
    parameter_name = "retry"

    def lookups(self, request, model_admin):
        return [("scheduled", "Retry scheduled"), ("gave_up", "Gave up")]

    def queryset(self, request, queryset):
        failed = queryset.filter(status=StripeEvent.Status.FAILED)
        if self.value() == "scheduled":
            return failed.filter(retry_at__isnull=False)
        if self.value() == "gave_up":
            return failed.filter(retry_at__isnull=True)
        return queryset


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["stripe_id", "type", "status", "retry", "source", "attempts", "stripe_created", "received_at"]
    list_filter = ["status", RetryFilter, "type", "source"]
    search_fields = ["=stripe_id", "type"]
    fields = [
        "stripe_link",
        "type",
        "status",
        "retry",
        "result",
        "source",
        "attempts",
        "failures",
        "stripe_created",
        "received_at",
        "processed_at",
        "payload_pretty",
    ]
    readonly_fields = fields
    actions = ["reprocess"]

    @admin.display(description="Stripe id")
    def stripe_link(self, event: StripeEvent) -> str:
        return _stripe_link(event.stripe_id)

    @admin.display(description="retry", ordering="retry_at")
    def retry(self, event: StripeEvent) -> str:
        if event.status != StripeEvent.Status.FAILED:
            return "-"
        if event.retry_at is None:
            return "gave up (reprocess by hand)"
        return f"at {timezone.localtime(event.retry_at):%Y-%m-%d %H:%M:%S}"

    @admin.display(description="payload")
    def payload_pretty(self, event: StripeEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.payload, indent=2, sort_keys=True))

    @admin.action(description="Reprocess (idempotent: nothing is granted or taken twice)", permissions=["reprocess"])
    def reprocess(self, request, queryset):
        results = [stripe_event_process(event_id=event.pk, force=True) for event in queryset]
        failed = [e.stripe_id for e in results if e.status == StripeEvent.Status.FAILED]
        self.message_user(request, f"{len(results) - len(failed)} event(s) reprocessed.", messages.SUCCESS)
        if failed:
            self.message_user(request, f"Failed again: {', '.join(failed)}", messages.ERROR)

    def has_reprocess_permission(self, request) -> bool:
        return request.user.has_perm("payments.change_stripeevent")


@admin.register(AutoRecharge)
class AutoRechargeAdmin(MoneyFormMixin, admin.ModelAdmin):
    list_display = [
        "wallet",
        "enabled",
        "threshold_money",
        "amount_money",
        "target_money",
        "monthly_cap",
        "consecutive_failures",
        "notice",
    ]
    list_select_related = ["wallet__account", "wallet__credit_type"]
    list_filter = ["enabled"]
    search_fields = ["=wallet__account__public_id", "=stripe_customer_id"]
    raw_id_fields = ["wallet"]
    readonly_fields = ["consecutive_failures", "last_failure", "last_failure_at", "disabled_reason", "created_at"]
    threshold_money = money_column("threshold", credit_type="wallet__credit_type")
    amount_money = money_column("amount", credit_type="wallet__credit_type")
    target_money = money_column("target", credit_type="wallet__credit_type")

    def money_places(self, obj) -> int | None:
        return obj.wallet.credit_type.scale if obj is not None else None

    @admin.display(description="monthly cap", ordering="monthly_cap_minor")
    def monthly_cap(self, config: AutoRecharge) -> str:
        return price_display(config.monthly_cap_minor, config.pack.currency)

    @admin.display(description="notice")
    def notice(self, config: AutoRecharge) -> str:
        return config.disabled_reason or config.last_failure or ""

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("pack")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class AutoRechargeForm(form):
            def clean(self):
                cleaned = super().clean()
                wallet, pack = cleaned.get("wallet"), cleaned.get("pack")
                if wallet is not None and pack is not None and pack.credit_type_id != wallet.credit_type_id:
                    self.add_error("pack", "This pack sells another credit type than the wallet's.")
                return cleaned

        return AutoRechargeForm

    def save_model(self, request, obj, form, change):
        if change and "enabled" in form.changed_data and obj.enabled:
            # Turned back on (as the API's configure does): a fresh start, not one failure from off again.
            obj.consecutive_failures, obj.disabled_reason = 0, ""
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            auto_recharge_wallet_sync(obj)  # the debit's lock reads the threshold from the wallet row


def _payments_panel(request, account) -> str:
    """The account page's money in: recent purchases, credits not recovered after refunds, auto-recharge."""
    purchases = list(Purchase.objects.filter(account=account).select_related("credit_type").order_by("-id")[:10])
    unrecovered = [p for p in Purchase.objects.filter(account=account, unrecovered__gt=0).select_related("credit_type")]
    recharges = list(AutoRecharge.objects.filter(wallet__account=account).select_related("wallet__credit_type"))
    if not (purchases or unrecovered or recharges):
        return None
    return render_to_string(
        "admin/accounts/account/panels/payments.html",
        {"purchases": purchases, "unrecovered": unrecovered, "recharges": recharges},
    )


account_panel_register(_payments_panel, order=15)
