"""Money in: credit packs, purchases paid through Stripe, Stripe's events and auto-recharge.

Design
------
* A `Purchase` is one attempt to buy credits (a Checkout Session, or an
  off-session PaymentIntent made by auto-recharge). It moves
  `pending -> paid | failed`, then possibly `refunded` or `disputed`, and
  points at the grant entry it produced. Once paid, its status is derived
  from what Stripe reported (`refunded_minor`, `dispute_status`), never
  overwritten by one event: see `Purchase.derived_status`. Credits are granted once per
  purchase: the grant and `grant_entry` are written under the purchase's row
  lock, and `grant_entry` is unique.
* Every Stripe event is stored once by its Stripe id (`StripeEvent`) before
  anything is done with it, then processed by a task; processing is
  idempotent, so a redelivery, `stripe_sync` or the admin's "reprocess" can
  run it again without a second effect.
* Events arrive in any order: `StripeObjectVersion` keeps, per Stripe object,
  the creation time of the newest event applied to it, and an older event
  never overwrites newer state.
* Auto-recharge (`AutoRecharge`, one per wallet) is decided under the
  wallet lock (billing's balance observer) and acted on after commit; the
  partial unique index `purchase_one_recharge_in_flight` lets at most one
  recharge per wallet be pending.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from accounts.ids import public_id
from accounts.models import Account
from billing.models import Hold, LedgerEntry, Wallet
from config.money import MoneyField, money_display
from payments.currency import price_display
from pricing.models import CreditType


def purchase_public_id() -> str:
    return public_id("pur", 24)


def pack_public_id() -> str:
    return public_id("pack", 16)


class CreditPack(models.Model):
    """What a customer can buy: `credits` of one credit type for `price_minor` in `currency`."""

    public_id = models.CharField(max_length=32, default=pack_public_id, editable=False, unique=True)
    name = models.CharField(max_length=255)
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+")
    credits = MoneyField(help_text="Credits granted per purchase.")
    price_minor = models.PositiveBigIntegerField(
        help_text="Price in the currency's minor unit, as Stripe counts it (cents for usd, yen for jpy)."
    )
    currency = models.CharField(max_length=3, default="usd", help_text="ISO 4217, lower case (Stripe's form).")
    stripe_price_id = models.CharField(
        max_length=255, blank=True, default="", help_text="Optional: a Stripe Price to check out with."
    )
    is_active = models.BooleanField(default=True, help_text="Inactive packs are not sold.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["price_minor", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(credits__gt=0), name="pack_credits_positive"),
            models.CheckConstraint(condition=Q(price_minor__gt=0), name="pack_price_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({money_display(self.credits, self.credit_type)})"


class Purchase(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"
        DISPUTED = "disputed", "Disputed"

    class Kind(models.TextChoices):
        CHECKOUT = "checkout", "Checkout"
        AUTO_RECHARGE = "auto_recharge", "Auto-recharge"

    class DisputeStatus(models.TextChoices):
        NONE = "", "No dispute"
        OPEN = "open", "Open"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    public_id = models.CharField(max_length=32, default=purchase_public_id, editable=False, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="purchases")
    credit_type = models.ForeignKey(CreditType, on_delete=models.PROTECT, related_name="+")
    pack = models.ForeignKey(CreditPack, null=True, blank=True, on_delete=models.PROTECT, related_name="purchases")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHECKOUT)
    credits = MoneyField()
    amount_minor = models.PositiveBigIntegerField(help_text="What the customer pays, in minor units.")
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    stripe_checkout_session_id = models.CharField(max_length=255, blank=True, default="")
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, default="")
    stripe_charge_id = models.CharField(max_length=255, blank=True, default="")
    stripe_customer_id = models.CharField(max_length=255, blank=True, default="")
    checkout_url = models.URLField(max_length=2000, blank=True, default="")
    grant_entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="purchase"
    )
    # Refunds and disputes: how much of the purchase's credits were taken back,
    # and how much of the refunded share had already been spent (not recoverable).
    refunded_minor = models.PositiveBigIntegerField(default=0)
    clawed_back = MoneyField(default=Decimal(0))
    unrecovered = MoneyField(default=Decimal(0))
    dispute_hold = models.OneToOneField(
        Hold, null=True, blank=True, on_delete=models.PROTECT, related_name="dispute_purchase"
    )
    # The dispute is tracked on its own (not folded into `status`), so a refund and a
    # dispute can both be true: `status` is derived from the two (`Purchase.derived_status`).
    dispute_id = models.CharField(max_length=255, blank=True, default="")
    dispute_status = models.CharField(max_length=8, choices=DisputeStatus.choices, blank=True, default="")
    failure_reason = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The monthly cap's sum over a wallet's recharges.
            models.Index(fields=["account", "credit_type", "kind", "created_at"], name="purchase_account_kind"),
        ]
        constraints = [
            # One purchase per payment intent: a grant can never be made twice for one payment.
            models.UniqueConstraint(
                fields=["stripe_payment_intent_id"],
                condition=~Q(stripe_payment_intent_id=""),
                name="purchase_payment_intent_unique",
            ),
            models.UniqueConstraint(
                fields=["stripe_checkout_session_id"],
                condition=~Q(stripe_checkout_session_id=""),
                name="purchase_checkout_session_unique",
            ),
            # At most one auto-recharge in flight per wallet (account, credit type).
            models.UniqueConstraint(
                fields=["account", "credit_type"],
                condition=Q(kind="auto_recharge", status="pending"),
                name="purchase_one_recharge_in_flight",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "paid", "failed", "refunded", "disputed"]),
                name="purchase_status_valid",
            ),
            models.CheckConstraint(condition=Q(kind__in=["checkout", "auto_recharge"]), name="purchase_kind_valid"),
            models.CheckConstraint(
                condition=Q(dispute_status__in=["", "open", "won", "lost"]), name="purchase_dispute_status_valid"
            ),
            models.CheckConstraint(condition=Q(credits__gt=0), name="purchase_credits_positive"),
            models.CheckConstraint(condition=Q(clawed_back__gte=0), name="purchase_clawed_back_non_negative"),
            models.CheckConstraint(condition=Q(unrecovered__gte=0), name="purchase_unrecovered_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.status} {money_display(self.credits, self.credit_type)}"

    def price_display(self) -> str:
        return price_display(self.amount_minor, self.currency)

    def derived_status(self) -> str:
        """A granted purchase's status from its refunds and its dispute: disputed while the dispute is
        open; then refunded if fully refunded or the dispute was lost; else paid."""
        if self.dispute_status == self.DisputeStatus.OPEN:
            return self.Status.DISPUTED
        if self.dispute_status == self.DisputeStatus.LOST or self.refunded_minor >= self.amount_minor:
            return self.Status.REFUNDED
        return self.Status.PAID


class StripeEvent(models.Model):
    """A Stripe event as received (webhook or `stripe_sync`): stored once, then processed."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    stripe_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    stripe_created = models.DateTimeField(help_text="When Stripe created the event (its ordering).")
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    source = models.CharField(max_length=16, default="webhook", help_text="webhook or sync")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    result = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(
        default=0, help_text="Runs that raised; each schedules a retry later, up to a limit."
    )
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweep retries this failed event; empty: not retried (gave up)."
    )
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="stripe_event_status"),
            # The sweep's retries: only failed events with a retry scheduled, a small set.
            models.Index(fields=["retry_at"], condition=Q(status="failed"), name="stripe_event_retry_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["received", "processed", "ignored", "failed"]),
                name="stripe_event_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id} {self.type} ({self.status})"


class StripeObjectVersion(models.Model):
    """The newest state applied per Stripe object: an older event never overwrites it."""

    stripe_id = models.CharField(max_length=255, unique=True)
    version = models.DateTimeField(help_text="The `created` time of the newest event applied.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stripe_id} @ {self.version:%Y-%m-%d %H:%M:%S}"


class AutoRecharge(models.Model):
    """Buy credits off-session when a wallet's available balance drops below `threshold`."""

    wallet = models.OneToOneField(Wallet, on_delete=models.PROTECT, related_name="auto_recharge")
    pack = models.ForeignKey(
        CreditPack, on_delete=models.PROTECT, related_name="+", help_text="Sets the price per credit and currency."
    )
    enabled = models.BooleanField(default=True)
    threshold = MoneyField(help_text="Recharge when available credits fall below this.")
    amount = MoneyField(null=True, blank=True, help_text="Credits to buy per recharge; or set a target.")
    target = MoneyField(null=True, blank=True, help_text="Buy up to this available balance; or set an amount.")
    monthly_cap_minor = models.PositiveBigIntegerField(help_text="Most charged per calendar month, minor units.")
    stripe_customer_id = models.CharField(max_length=255)
    stripe_payment_method_id = models.CharField(max_length=255)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_failure = models.CharField(max_length=1000, blank=True, default="")
    last_failure_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gt=0), name="autorecharge_threshold_positive"),
            models.CheckConstraint(
                condition=Q(amount__isnull=False, amount__gt=0, target__isnull=True)
                | Q(amount__isnull=True, target__isnull=False, target__gt=F("threshold")),
                name="autorecharge_amount_xor_target",
            ),
        ]

    def __str__(self) -> str:
        return f"auto-recharge {self.wallet_id} ({'on' if self.enabled else 'off'})"
