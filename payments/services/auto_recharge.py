"""Auto-recharge: buy credits off-session when a wallet's available balance drops below its threshold.

Decided under the wallet lock, acted on after commit:

1. `auto_recharge_observe` is billing's balance observer (billing/core.py):
   inside the lock of every money operation, after a debit that leaves the
   available balance below the wallet's threshold, it inserts one pending
   auto-recharge `Purchase`, unless one is already in flight (the partial
   unique index `purchase_one_recharge_in_flight` is the database's word on
   it) or the month's cap would be passed; it touches no network.
2. After commit, a task (`auto_recharge_charge`) creates one off-session
   PaymentIntent for that purchase, with an idempotency key derived from the
   wallet and the purchase (the crossing): a retried task gets the same one.
3. Credits arrive only through the webhook path (`payment_intent.succeeded`
   grants the purchase once, like any other purchase).
4. A failed payment fails the purchase and counts a consecutive failure;
   after CREDITLEDGER_AUTO_RECHARGE_MAX_FAILURES, auto-recharge turns itself
   off, records why, and alerts staff.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_UP, Decimal
from functools import partial

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.core import Posting
from billing.models import Wallet
from events.services import event_record
from payments.exceptions import InvalidAutoRecharge
from payments.models import AutoRecharge, CreditPack, Purchase
from payments.services.purchases import staff_alert
from payments.stripe_api import stripe_client

logger = logging.getLogger(__name__)

# Statuses that count against the monthly cap: money taken or about to be.
CAP_STATUSES = (Purchase.Status.PENDING, Purchase.Status.PAID, Purchase.Status.REFUNDED, Purchase.Status.DISPUTED)


def month_start(now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return timezone.localtime(now, timezone.get_fixed_timezone(0)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )


def recharge_price_minor(pack: CreditPack, credits: Decimal) -> int:
    """What `credits` cost at the pack's price per credit, rounded up to a whole minor unit."""
    return int((credits * Decimal(pack.price_minor) / pack.credits).to_integral_value(rounding=ROUND_CEILING))


def auto_recharge_month_spent(*, account_id: int, credit_type_id: int, now: datetime | None = None) -> int:
    spent = Purchase.objects.filter(
        account_id=account_id,
        credit_type_id=credit_type_id,
        kind=Purchase.Kind.AUTO_RECHARGE,
        status__in=CAP_STATUSES,
        created_at__gte=month_start(now),
    ).aggregate(total=Sum("amount_minor"))["total"]
    return spent or 0


def auto_recharge_observe(posting: Posting, available_before: Decimal, available_after: Decimal) -> None:
    """Billing's balance observer: under the wallet lock, start at most one recharge (see the module docstring)."""
    # Usage only: a charge, or a hold reserving for one. Not a clawback (an adjustment) or a
    # dispute's freeze, which must not charge a disputing customer's card.
    usage = posting.last_change == "charge" or (
        posting.last_change == "hold" and "dispute" not in (posting.last_hold.metadata or {})
    )
    if not usage:
        return
    wallet = posting.wallet
    # Read with the lock (Wallet.recharge_below mirrors an enabled AutoRecharge's threshold): a debit
    # that leaves the balance at or above it, nearly every debit, looks nothing up.
    if available_after >= available_before or wallet.recharge_below is None or available_after >= wallet.recharge_below:
        return
    config = (
        AutoRecharge.objects.filter(wallet_id=wallet.pk, enabled=True, threshold__gt=available_after)
        .select_related("pack")
        .first()
    )
    if config is None:
        return
    in_flight = Purchase.objects.filter(
        account_id=wallet.account_id,
        credit_type_id=wallet.credit_type_id,
        kind=Purchase.Kind.AUTO_RECHARGE,
        status=Purchase.Status.PENDING,
    )
    if in_flight.exists():
        return
    credits = config.amount if config.amount is not None else config.target - available_after
    credits = credits.quantize(posting.credit_type.quantum, rounding=ROUND_UP)
    if credits <= 0:
        return
    price = recharge_price_minor(config.pack, credits)
    spent = auto_recharge_month_spent(account_id=wallet.account_id, credit_type_id=wallet.credit_type_id)
    if spent + price > config.monthly_cap_minor:
        logger.info("auto-recharge of wallet %s skipped: monthly cap reached", wallet.pk)
        return
    purchase = Purchase(
        account_id=wallet.account_id,
        credit_type_id=wallet.credit_type_id,
        pack=config.pack,
        kind=Purchase.Kind.AUTO_RECHARGE,
        credits=credits,
        amount_minor=price,
        currency=config.pack.currency,
        stripe_customer_id=config.stripe_customer_id,
    )
    try:
        with transaction.atomic():  # a savepoint: the in-flight index refuses a second pending recharge
            purchase.save(force_insert=True)
    except IntegrityError:
        return
    from payments.tasks import auto_recharge_charge

    posting.after_commit(partial(auto_recharge_charge.delay, purchase.pk))


# Errors after which nobody knows whether Stripe made the payment: never counted as a failure.
_OUTCOME_UNKNOWN = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


def auto_recharge_idempotency_key(purchase: Purchase, wallet_id: int) -> str:
    """One key per wallet and crossing (the purchase the crossing created): a retried task pays once."""
    return f"auto-recharge:{wallet_id}:{purchase.public_id}"


def auto_recharge_charge(*, purchase: Purchase) -> Purchase:
    """Create the off-session PaymentIntent for a pending auto-recharge purchase (after commit, outside any lock)."""
    purchase = Purchase.objects.select_related("account").get(pk=purchase.pk)
    if purchase.status != Purchase.Status.PENDING or purchase.stripe_payment_intent_id:
        return purchase
    config = AutoRecharge.objects.select_related("wallet").get(
        wallet__account_id=purchase.account_id, wallet__credit_type_id=purchase.credit_type_id
    )
    try:
        intent = stripe_client().v1.payment_intents.create(
            params={
                "amount": purchase.amount_minor,
                "currency": purchase.currency,
                "customer": config.stripe_customer_id,
                "payment_method": config.stripe_payment_method_id,
                "off_session": True,
                "confirm": True,
                "metadata": {
                    "purchase": purchase.public_id,
                    "account": purchase.account.public_id,
                    "kind": Purchase.Kind.AUTO_RECHARGE.value,
                },
            },
            options={"idempotency_key": auto_recharge_idempotency_key(purchase, config.wallet_id)},
        )
    except _OUTCOME_UNKNOWN as exc:
        # The payment may have been made (a timeout after Stripe charged): not a failure, and the one
        # recharge in flight stays pending. The sweep (auto_recharges_stalled_retry) asks again with the
        # same idempotency key, and Stripe answers with the payment it made, if it made one.
        logger.warning("auto-recharge %s: Stripe did not answer (%s); will ask again", purchase.public_id, exc)
        return purchase
    except stripe.StripeError as exc:  # refused (a declined card, a bad payment method): nothing was charged
        return auto_recharge_failed(purchase=purchase, reason=exc.user_message or str(exc) or type(exc).__name__)
    Purchase.objects.filter(pk=purchase.pk, stripe_payment_intent_id="").update(
        stripe_payment_intent_id=intent.id, updated_at=timezone.now()
    )
    purchase.refresh_from_db()
    if intent.status in ("requires_payment_method", "requires_action", "canceled"):
        return auto_recharge_failed(purchase=purchase, reason=f"Payment intent {intent.id} is {intent.status}.")
    return purchase


def auto_recharges_stalled_retry(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Create the PaymentIntent of pending recharges that have none a while on (their after-commit task was lost).

    Without this a lost enqueue would leave the wallet's one in-flight
    recharge pending for ever, blocking every later one. Safe to repeat: the
    PaymentIntent's idempotency key is derived from the purchase.
    """
    stalled = Purchase.objects.filter(
        kind=Purchase.Kind.AUTO_RECHARGE,
        status=Purchase.Status.PENDING,
        stripe_payment_intent_id="",
        created_at__lte=timezone.now() - older_than,
    ).order_by("id")[:100]
    retried = 0
    for purchase in stalled:
        auto_recharge_charge(purchase=purchase)
        retried += 1
    return retried


def auto_recharge_failed(*, purchase: Purchase, reason: str) -> Purchase:
    """Fail a pending recharge and count it; after the configured number in a row, turn auto-recharge off.

    Counted once per purchase (the pending -> failed transition), however
    many times the failure is reported (the API's answer, the webhook).
    """
    with transaction.atomic():
        moved = Purchase.objects.filter(pk=purchase.pk, status=Purchase.Status.PENDING).update(
            status=Purchase.Status.FAILED, failure_reason=reason[:1000], updated_at=timezone.now()
        )
        purchase.refresh_from_db()
        if not moved:
            return purchase
        config = (
            AutoRecharge.objects.select_for_update()
            .select_related("wallet__account", "wallet__credit_type")
            .get(wallet__account_id=purchase.account_id, wallet__credit_type_id=purchase.credit_type_id)
        )
        now = timezone.now()
        config.consecutive_failures += 1
        config.last_failure, config.last_failure_at = reason[:1000], now
        fields = ["consecutive_failures", "last_failure", "last_failure_at", "updated_at"]
        if config.enabled and config.consecutive_failures >= settings.CREDITLEDGER_AUTO_RECHARGE_MAX_FAILURES:
            config.enabled = False
            config.disabled_reason = (
                f"Turned off after {config.consecutive_failures} failed payments in a row: {reason}"[:1000]
            )
            fields += ["enabled", "disabled_reason"]
            auto_recharge_wallet_sync(config)
            account = config.wallet.account
            staff_alert(
                f"Auto-recharge of account {account.public_id} turned off: {config.disabled_reason}",
                account=account.public_id,
                wallet=config.wallet_id,
            )
            auto_recharge_failed_event(config=config, reason=reason)
        config.save(update_fields=fields)
    return purchase


def auto_recharge_failed_event(*, config: AutoRecharge, reason: str) -> None:
    """Record `auto_recharge.failed` in the transaction that turned auto-recharge off (webhooks tell the client)."""
    wallet = config.wallet
    event_record(
        type="auto_recharge.failed",
        account=wallet.account,
        data={
            "object": "auto_recharge",
            "account": wallet.account.public_id,
            "credit_type": wallet.credit_type.code,
            "enabled": False,
            "consecutive_failures": config.consecutive_failures,
            "reason": config.disabled_reason or reason,
        },
    )


def auto_recharge_configure(
    *,
    wallet: Wallet,
    pack: CreditPack,
    threshold: Decimal,
    monthly_cap_minor: int,
    stripe_customer_id: str,
    stripe_payment_method_id: str,
    amount: Decimal | None = None,
    target: Decimal | None = None,
    enabled: bool = True,
) -> AutoRecharge:
    """Create or replace a wallet's auto-recharge settings; turning it on clears the failure count."""
    if (amount is None) == (target is None):
        raise InvalidAutoRecharge("Give either amount or target.")
    if pack.credit_type_id != wallet.credit_type_id:
        raise InvalidAutoRecharge("The pack sells another credit type than the wallet's.")
    if threshold <= 0 or (amount is not None and amount <= 0) or (target is not None and target <= threshold):
        raise InvalidAutoRecharge("threshold must be positive; amount positive, or target above the threshold.")
    values = {
        "pack": pack,
        "enabled": enabled,
        "threshold": threshold,
        "amount": amount,
        "target": target,
        "monthly_cap_minor": monthly_cap_minor,
        "stripe_customer_id": stripe_customer_id,
        "stripe_payment_method_id": stripe_payment_method_id,
    }
    if enabled:
        values.update(consecutive_failures=0, disabled_reason="")
    with transaction.atomic():
        config, _ = AutoRecharge.objects.update_or_create(wallet=wallet, defaults=values)
        auto_recharge_wallet_sync(config)
    return config


def auto_recharge_wallet_sync(config: AutoRecharge) -> None:
    """Mirror the settings on the wallet row, where the debit's lock reads them (auto_recharge_observe)."""
    Wallet.objects.filter(pk=config.wallet_id).update(recharge_below=config.threshold if config.enabled else None)
