"""Plans, subscriptions and the record of each period's allowance.

A plan sells a monthly allowance and a daily limit in one credit type. The
allowance is an ordinary grant in billing's ledger (`AllowanceGrant.entry`);
the daily limit is read by billing's debit lock through the plan limit source
this app registers (`subscriptions/statements.py`, `apps.py`).

The tables were billing's (`billing_plan`, ...) and were renamed in place by
migration 0001: rows, ids and constraint names came along.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from accounts.models import Account
from billing.models import LedgerEntry
from config.money import MoneyField, money_display
from pricing.models import CreditType


class Plan(models.Model):
    """What a subscription buys: a monthly allowance and a daily limit in one credit type.

    A plan carries its trial figures next to its paid ones. Which set applies
    is decided by the subscription's status alone (`Subscription.is_trial`),
    never by a separate flag that could disagree with it.
    """

    code = models.SlugField(max_length=64, db_index=False)  # plan_code_unique
    name = models.CharField(max_length=255)
    # No index of its own: plans are few, and no query looks them up by credit type alone.
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="plans", db_index=False)
    monthly_allowance = MoneyField(default=Decimal(0), help_text="Granted at the start of each paid period.")
    daily_limit = MoneyField(null=True, blank=True, help_text="Most a paid subscriber may spend per day; empty: none.")
    trial_allowance = MoneyField(default=Decimal(0), help_text="Granted at the start of a trial period.")
    trial_daily_limit = MoneyField(null=True, blank=True, help_text="Daily limit while trialing; empty: none.")
    allowance_expires = models.BooleanField(
        default=True, help_text="An allowance left unused at the end of its period expires (no rollover)."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive plans take no new subscriptions.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            # Codes name plans to people; the admin searches them by substring, which no index serves.
            models.UniqueConstraint(fields=["code"], name="plan_code_unique"),
            models.CheckConstraint(condition=Q(monthly_allowance__gte=0), name="plan_allowance_non_negative"),
            models.CheckConstraint(condition=Q(trial_allowance__gte=0), name="plan_trial_allowance_non_negative"),
            models.CheckConstraint(
                condition=Q(daily_limit__isnull=True) | Q(daily_limit__gte=0), name="plan_daily_limit_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(trial_daily_limit__isnull=True) | Q(trial_daily_limit__gte=0),
                name="plan_trial_daily_limit_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.code


class Subscription(models.Model):
    """An account's subscription to a plan, mirrored from the payment provider.

    `status` is the only source of truth for trial versus paid. `trial_end`
    and `metadata` are what the provider told us, kept for people to read;
    no billing decision consults them (seed 002: a stale trial flag served
    paying customers for free).
    """

    class Status(models.TextChoices):
        TRIALING = "trialing", "Trialing"
        ACTIVE = "active", "Active"
        PAST_DUE = "past_due", "Past due"
        CANCELED = "canceled", "Canceled"

    # Statuses whose plan limits apply. Allowances renew only for TRIALING and ACTIVE.
    LIVE_STATUSES = ("trialing", "active", "past_due")
    RENEWING_STATUSES = ("trialing", "active")

    # Indexed: an account's subscriptions, canceled ones too (admin search
    # =account__public_id; subscription_one_live_per_account covers live ones only).
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="subscriptions")
    # Indexed: the admin's plan filter.
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    trial_end = models.DateTimeField(null=True, blank=True, help_text="Informational; trial is the status alone.")
    canceled_at = models.DateTimeField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    stripe_subscription_id = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The renewal sweep: due periods of subscriptions that still renew.
            models.Index(
                fields=["current_period_end"],
                name="subscription_renewal_due",
                condition=Q(status__in=["trialing", "active"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["trialing", "active", "past_due", "canceled"]), name="subscription_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(current_period_end__gt=F("current_period_start")), name="subscription_period_positive"
            ),
            # One live subscription per account, so "the account's plan" is never ambiguous.
            # Also the index of every debit's daily-limit look-up (live subscription of the account).
            models.UniqueConstraint(
                fields=["account"], condition=~Q(status="canceled"), name="subscription_one_live_per_account"
            ),
            models.UniqueConstraint(
                fields=["stripe_subscription_id"],
                condition=~Q(stripe_subscription_id=""),
                name="subscription_stripe_id_unique",  # also the admin search =stripe_subscription_id
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} on {self.plan_id} ({self.status})"

    @staticmethod
    def status_is_trial(status: str) -> bool:
        return status == Subscription.Status.TRIALING

    @property
    def is_trial(self) -> bool:
        """Derived from the status only: a paid subscription is never a trial."""
        return self.status_is_trial(self.status)

    @property
    def allowance(self) -> Decimal:
        return self.plan.trial_allowance if self.is_trial else self.plan.monthly_allowance

    @property
    def daily_limit(self) -> Decimal | None:
        if self.status not in self.LIVE_STATUSES:
            return None
        return self.plan.trial_daily_limit if self.is_trial else self.plan.daily_limit


class AllowanceGrant(models.Model):
    """The record that one period's allowance was granted: at most one per period.

    Written in the same transaction as the grant, so the unique constraint
    makes a renewal that runs twice (a retried task, two workers) grant once.
    """

    # No index of its own: allowance_once_per_period leads with the subscription.
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="allowance_grants", db_index=False
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    amount = MoneyField(default=Decimal(0))
    # Empty when the period's allowance is zero (nothing to grant). Unique: one record per grant entry.
    entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="allowance_grant"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Also a subscription's grants, newest period first (its admin inline).
            models.UniqueConstraint(fields=["subscription", "period_start"], name="allowance_once_per_period"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="allowance_amount_non_negative"),
        ]

    def __str__(self) -> str:
        amount = money_display(self.amount, self.subscription.plan.credit_type)
        return f"{self.subscription_id} @ {self.period_start:%Y-%m-%d}: {amount}"
