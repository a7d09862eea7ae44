"""Plans and subscriptions in the admin (URLs under /admin/subscriptions/).

Subscriptions are created and change status only through the services
(`subscription_create` grants the first allowance; the actions call
`subscription_status_set` and `subscription_renew`), with the staff user as
actor. The allowance records are shown inline, read-only.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.utils import timezone

from billing.admin import CompactColumnsMixin, account_panel_register
from billing.services import Actor
from config.admin_money import MoneyFormMixin, money_column
from config.errors import DomainError
from config.money import money_display
from subscriptions.models import AllowanceGrant, Plan, Subscription
from subscriptions.services import subscription_create, subscription_renew, subscription_status_set


@admin.register(Plan)
class PlanAdmin(MoneyFormMixin, admin.ModelAdmin):
    """Plans are configuration: editable, never deleted once subscribed to (PROTECT)."""

    list_display = [
        "code",
        "name",
        "credit_type",
        "monthly_allowance_money",
        "daily_limit_money",
        "trial_allowance_money",
        "trial_daily_limit_money",
        "allowance_expires",
        "is_active",
    ]
    list_select_related = ["credit_type"]
    list_filter = ["is_active", "credit_type"]
    search_fields = ["code", "name"]
    readonly_fields = ["created_at"]
    monthly_allowance_money = money_column("monthly_allowance", description="monthly allowance")
    daily_limit_money = money_column("daily_limit", description="daily limit")
    trial_allowance_money = money_column("trial_allowance", description="trial allowance")
    trial_daily_limit_money = money_column("trial_daily_limit", description="trial daily limit")


class AllowanceGrantInline(admin.TabularInline):
    model = AllowanceGrant
    extra = 0
    can_delete = False
    fields = ["period_start", "period_end", "amount_money", "entry", "created_at"]
    readonly_fields = fields
    amount_money = money_column("amount", credit_type="entry__credit_type")
    ordering = ["-period_start"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class SubscriptionAddForm(forms.ModelForm):
    """Refuses, as form errors, what `subscription_create` would refuse."""

    class Meta:
        model = Subscription
        fields = ["account", "plan", "status", "trial_end", "stripe_customer_id", "stripe_subscription_id", "metadata"]

    def clean(self):
        cleaned = super().clean()
        account, plan, status = cleaned.get("account"), cleaned.get("plan"), cleaned.get("status")
        if status and status not in Subscription.LIVE_STATUSES:
            self.add_error("status", "A new subscription must be trialing, active or past due.")
        if plan and not plan.is_active:
            self.add_error("plan", "This plan takes no new subscriptions.")
        if account and Subscription.objects.filter(account=account, status__in=Subscription.LIVE_STATUSES).exists():
            self.add_error("account", "This account already has a live subscription: cancel it first.")
        return cleaned


@admin.register(Subscription)
class SubscriptionAdmin(CompactColumnsMixin, admin.ModelAdmin):
    """Created through `subscription_create` (which grants the first allowance).

    Status changes go through the actions, which call `subscription_status_set`;
    the form edits only what the payment provider told us (ids, trial_end,
    metadata), none of which decides trial versus paid.
    """

    # Compact columns, so the list fits 1366 px (tests/config/test_change_lists_fit.py).
    list_display = [
        "id",
        "account_short",
        "plan",
        "status",
        "period_short",
        "stripe_subscription_id",
        "updated_short",
    ]
    list_select_related = ["account", "plan"]
    list_filter = ["status", "plan"]
    search_fields = ["=account__public_id", "account__external_id", "=stripe_subscription_id", "=stripe_customer_id"]
    autocomplete_fields = ["account", "plan"]
    inlines = [AllowanceGrantInline]
    actions = ["mark_active", "mark_past_due", "mark_canceled", "renew_due"]
    add_fields = ["account", "plan", "status", "trial_end", "stripe_customer_id", "stripe_subscription_id", "metadata"]
    change_readonly = [
        "account",
        "plan",
        "status",
        "current_period_start",
        "current_period_end",
        "canceled_at",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="current period", ordering="current_period_end")
    def period_short(self, subscription: Subscription) -> str:
        start, end = (
            timezone.localtime(t).strftime("%Y-%m-%d")
            for t in (subscription.current_period_start, subscription.current_period_end)
        )
        return f"{start} → {end}"

    @admin.display(description="updated", ordering="updated_at")
    def updated_short(self, subscription: Subscription) -> str:
        return timezone.localtime(subscription.updated_at).strftime("%Y-%m-%d %H:%M")

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.add_fields
        return [*self.change_readonly, "trial_end", "stripe_customer_id", "stripe_subscription_id", "metadata"]

    def get_readonly_fields(self, request, obj=None):
        return self.change_readonly if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = SubscriptionAddForm
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = subscription_create(
            account=obj.account,
            plan=obj.plan,
            status=obj.status,
            actor=Actor(user=request.user),
            trial_end=obj.trial_end,
            stripe_customer_id=obj.stripe_customer_id,
            stripe_subscription_id=obj.stripe_subscription_id,
            metadata=obj.metadata,
        )
        obj.pk = created.pk
        obj.current_period_start, obj.current_period_end = created.current_period_start, created.current_period_end
        obj._state.adding = False

    def _set_status(self, request, queryset, status: str) -> None:
        done = 0
        for subscription in queryset:
            try:
                subscription_status_set(subscription=subscription, status=status, actor=Actor(user=request.user))
                done += 1
            except DomainError as error:
                self.message_user(request, f"{subscription}: {error.message}", messages.ERROR)
        if done:
            label = Subscription.Status(status).label.lower()
            self.message_user(request, f"{done} subscription{pluralize(done)} now {label}.", messages.SUCCESS)

    @admin.action(description="Mark active (a trial converts: new paid period)", permissions=["change"])
    def mark_active(self, request, queryset):
        self._set_status(request, queryset, Subscription.Status.ACTIVE)

    @admin.action(description="Mark past due", permissions=["change"])
    def mark_past_due(self, request, queryset):
        self._set_status(request, queryset, Subscription.Status.PAST_DUE)

    @admin.action(description="Cancel", permissions=["change"])
    def mark_canceled(self, request, queryset):
        self._set_status(request, queryset, Subscription.Status.CANCELED)

    @admin.action(description="Renew ended periods now (grants each allowance once)", permissions=["change"])
    def renew_due(self, request, queryset):
        renewed = []
        for subscription in queryset.select_related("account", "plan__credit_type"):
            grant = subscription_renew(subscription=subscription, actor=Actor(user=request.user))
            if grant is not None:
                renewed.append(
                    f"{subscription.account.public_id}: {subscription.plan.name}, "
                    f"{money_display(grant.amount, subscription.plan.credit_type)}"
                )
        if not renewed:
            self.message_user(request, "No selected subscription had an ended period: nothing granted.")
            return
        message = f"Renewed {len(renewed)} subscription{pluralize(len(renewed))}, allowance granted: "
        self.message_user(request, message + "; ".join(renewed) + ".", messages.SUCCESS)


def _subscription_panel(request, account) -> str:
    """The account page's subscription: plan, status, period (registered with billing's account admin)."""
    subscription = (
        Subscription.objects.filter(account=account).select_related("plan__credit_type").order_by("-id").first()
    )
    return render_to_string("admin/accounts/account/panels/subscription.html", {"subscription": subscription})


account_panel_register(_subscription_panel, order=10)
