"""Purchases: checkout, the grant made once per payment, refunds' clawback and disputes' freeze.

Lock order, everywhere in this app: the purchase row (`select_for_update`),
then the wallet (`billing.core.posting`). Every balance change goes through
billing's posting protocol.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.ids import derived_public_id
from accounts.models import Account
from accounts.services import account_set_status
from billing.core import Actor, posting
from billing.models import CreditLot, Hold, LedgerEntry
from billing.outbox import outbox_enqueue
from billing.services import grant_create, hold_release
from payments.exceptions import PaymentProviderError
from payments.models import AutoRecharge, CreditPack, Purchase
from payments.stripe_api import stripe_client

logger = logging.getLogger(__name__)

ALERT_TOPIC = "alert.payments"


def staff_alert(message: str, **context) -> None:
    """An alert for staff (log line + Sentry, via the outbox), written in the caller's transaction."""
    outbox_enqueue(topic=ALERT_TOPIC, payload={"message": message, "level": "warning", **context})


# --- checkout -------------------------------------------------------------------------


def checkout_purchase_public_id(*, account: Account, idempotency_key: str) -> str:
    """The purchase id a checkout request makes: derived from the account and the client's key, never random.

    Our id travels to Stripe (metadata, client_reference_id) with an
    idempotency key derived from the same two; Stripe answers a repeated key
    with its first session only if every parameter is the same, so a retry
    must send the same purchase id.
    """
    return derived_public_id("pur", f"{account.public_id}\x00{idempotency_key}")


def checkout_session_create(
    *, account: Account, pack: CreditPack, success_url: str, cancel_url: str, idempotency_key: str
) -> Purchase:
    """Record a pending purchase and open a Stripe Checkout Session (payment mode) for it.

    Runs inside the caller's transaction (the API's idempotent one, or the
    portal's). The purchase id and the Stripe idempotency key both derive
    from the account and the client's key, so a retry after our transaction
    rolled back sends Stripe the very same request and gets the same session
    back; a repeat after ours committed (a double-submitted portal form)
    finds the purchase and its session here. The webhook finds the purchase
    by our id in the session's metadata.
    """
    public_id = checkout_purchase_public_id(account=account, idempotency_key=idempotency_key)
    existing = Purchase.objects.filter(public_id=public_id).first()
    if existing is not None and existing.stripe_checkout_session_id:
        return existing
    purchase = existing or Purchase(
        public_id=public_id,
        account=account,
        credit_type=pack.credit_type,
        pack=pack,
        kind=Purchase.Kind.CHECKOUT,
        credits=pack.credits,
        amount_minor=pack.price_minor,
        currency=pack.currency,
    )
    if existing is None:
        try:
            with transaction.atomic():  # a savepoint: a concurrent repeat may have inserted it first
                purchase.save(force_insert=True)
        except IntegrityError:
            purchase = Purchase.objects.get(public_id=public_id)
            if purchase.stripe_checkout_session_id:
                return purchase
    metadata = {"purchase": purchase.public_id, "account": account.public_id}
    if pack.stripe_price_id:
        line_item = {"price": pack.stripe_price_id, "quantity": 1}
    else:
        line_item = {
            "quantity": 1,
            "price_data": {
                "currency": pack.currency,
                "unit_amount": pack.price_minor,
                "product_data": {"name": pack.name},
            },
        }
    params = {
        "mode": "payment",
        "line_items": [line_item],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": purchase.public_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }
    try:
        session = stripe_client().v1.checkout.sessions.create(
            params=params, options={"idempotency_key": f"checkout:{account.public_id}:{idempotency_key}"}
        )
    except stripe.StripeError as exc:
        logger.warning("checkout session for %s failed: %s", purchase.public_id, exc)
        raise PaymentProviderError() from exc
    already = Purchase.objects.filter(stripe_checkout_session_id=session.id).exclude(pk=purchase.pk).first()
    if already is not None:  # a concurrent repeat stored the session first
        return already
    purchase.stripe_checkout_session_id = session.id
    purchase.checkout_url = session.url or ""
    purchase.save(update_fields=["stripe_checkout_session_id", "checkout_url", "updated_at"])
    return purchase


# --- paid: the grant, once ------------------------------------------------------------------


def purchase_find(
    *, public_id: str = "", checkout_session_id: str = "", payment_intent_id: str = ""
) -> Purchase | None:
    """The purchase a Stripe object names: by our id in its metadata, else by the Stripe ids we stored."""
    queryset = Purchase.objects.all()
    if public_id and (found := queryset.filter(public_id=public_id).first()):
        return found
    if checkout_session_id and (found := queryset.filter(stripe_checkout_session_id=checkout_session_id).first()):
        return found
    if payment_intent_id:
        return queryset.filter(stripe_payment_intent_id=payment_intent_id).first()
    return None


def purchase_fulfil(
    *, purchase: Purchase, payment_intent_id: str = "", charge_id: str = "", customer_id: str = ""
) -> tuple[Purchase, bool]:
    """Mark a purchase paid and grant its credits as a purchased lot, once; (purchase, granted now).

    Under the purchase's row lock: a second delivery, a second event for the
    same payment (checkout.session.completed and payment_intent.succeeded)
    or a concurrent worker finds `grant_entry` set and grants nothing.
    """
    with transaction.atomic():
        current = Purchase.objects.select_for_update().select_related("account", "credit_type").get(pk=purchase.pk)
        fields = []
        for name, value in (
            ("stripe_payment_intent_id", payment_intent_id),
            ("stripe_charge_id", charge_id),
            ("stripe_customer_id", customer_id),
        ):
            if value and not getattr(current, name):
                setattr(current, name, value)
                fields.append(name)
        if current.grant_entry_id is not None:
            if fields:
                current.save(update_fields=[*fields, "updated_at"])
            return current, False
        entry = grant_create(
            account=current.account,
            credit_type=current.credit_type,
            amount=current.credits,
            actor=Actor.system(),
            reason=f"Purchase {current.public_id}",
            metadata={"purchase": current.public_id, "payment_intent": current.stripe_payment_intent_id},
            source=CreditLot.Source.PURCHASED,
        )
        current.grant_entry = entry
        current.status = Purchase.Status.PAID
        current.paid_at = timezone.now()
        current.failure_reason = ""
        current.save(update_fields=[*fields, "grant_entry", "status", "paid_at", "failure_reason", "updated_at"])
        if current.kind == Purchase.Kind.AUTO_RECHARGE:
            AutoRecharge.objects.filter(
                wallet__account_id=current.account_id, wallet__credit_type_id=current.credit_type_id
            ).update(consecutive_failures=0, updated_at=timezone.now())
        return current, True


def purchase_fail(*, purchase: Purchase, reason: str) -> Purchase:
    """A payment that did not go through: pending -> failed (a paid purchase is never un-paid here)."""
    Purchase.objects.filter(pk=purchase.pk, status=Purchase.Status.PENDING).update(
        status=Purchase.Status.FAILED, failure_reason=reason[:1000], updated_at=timezone.now()
    )
    purchase.refresh_from_db()
    return purchase


# --- refunds and disputes: taking credits back --------------------------------------------------


def _share(purchase: Purchase, minor: int) -> Decimal:
    """The credits that `minor` of the purchase's price paid for (rounded down to the credit type's scale)."""
    if minor >= purchase.amount_minor:
        return purchase.credits
    value = purchase.credits * Decimal(minor) / Decimal(purchase.amount_minor)
    return value.quantize(purchase.credit_type.quantum, rounding=ROUND_DOWN)


def _purchased_lot(purchase: Purchase) -> CreditLot | None:
    return CreditLot.objects.filter(entry_id=purchase.grant_entry_id).first()


def _claw_back(purchase: Purchase, credits: Decimal, reason: str) -> tuple[Decimal, Decimal]:
    """Take up to `credits` back from what is left of the purchase's lot; (taken, unrecovered).

    Never below zero: only the lot's remaining credits that are available
    (not held) can be taken; the rest was spent and is recorded unrecovered.
    Called with the purchase row locked.
    """
    lot = _purchased_lot(purchase)
    taken = Decimal(0)
    if lot is not None and credits > 0:
        with posting(account=purchase.account, credit_type=purchase.credit_type) as p:
            taken = p.lot_drain(lot, limit=credits)
            if taken > 0:
                p.post(
                    kind=LedgerEntry.Kind.ADJUSTMENT,
                    amount=-taken,
                    actor=Actor.system(),
                    description=reason,
                    metadata={"purchase": purchase.public_id},
                    related_entry=purchase.grant_entry,
                    lot_drained=True,
                )
    unrecovered = credits - taken
    purchase.clawed_back += taken
    purchase.unrecovered += unrecovered
    if unrecovered > 0:
        staff_alert(
            f"Purchase {purchase.public_id}: {unrecovered} credits already spent could not be clawed back.",
            purchase=purchase.public_id,
            account=purchase.account.public_id,
        )
        if settings.CREDITLEDGER_SUSPEND_ON_UNRECOVERED:
            account_set_status(account=purchase.account, status=Account.Status.SUSPENDED)
    return taken, unrecovered


def _freeze(purchase: Purchase, dispute_id: str) -> None:
    """Hold what is left (and available) of the purchase's lot; the hold becomes `dispute_hold`.

    A hold of its own (not hold_create's, which caps expiry at a day): a
    dispute takes weeks; it is released when it closes. Called with the
    purchase row locked.
    """
    lot = _purchased_lot(purchase)
    if lot is None:
        return
    with posting(account=purchase.account, credit_type=purchase.credit_type) as p:
        remaining = CreditLot.objects.filter(pk=lot.pk).values_list("remaining", flat=True).get()
        amount = min(remaining, p.available)
        if amount > 0:
            hold = Hold(
                wallet=p.wallet,
                account=purchase.account,
                credit_type=purchase.credit_type,
                amount=amount,
                expires_at=timezone.now() + timedelta(days=settings.CREDITLEDGER_DISPUTE_HOLD_DAYS),
                metadata={"purchase": purchase.public_id, "dispute": dispute_id},
            )
            p.hold_reserve(hold)
            purchase.dispute_hold = hold


def _unfreeze(purchase: Purchase, reason: str) -> bool:
    """Release the dispute's hold if it is still pending; whether it was. Called with the purchase row locked."""
    if purchase.dispute_hold_id is None:
        return False
    hold = Hold.objects.select_related("account", "credit_type").get(pk=purchase.dispute_hold_id)
    if hold.status != Hold.Status.PENDING:
        return False
    hold_release(hold=hold, actor=Actor.system(), reason=reason)
    return True


def purchase_refund_sync(*, purchase: Purchase, amount_refunded_minor: int) -> Purchase:
    """Follow Stripe's cumulative refunded amount: claw back the refunded share not yet taken back.

    Idempotent and order-proof: the charge carries the total refunded so
    far, and only the part beyond what this purchase already accounted for
    (clawed back + unrecovered) moves; an older, smaller total moves nothing.
    During an open dispute the frozen credits are still the purchase's: the
    freeze is lifted for the clawback, then what is left is frozen again.
    """
    with transaction.atomic():
        current = Purchase.objects.select_for_update().select_related("account", "credit_type").get(pk=purchase.pk)
        if current.grant_entry_id is None or amount_refunded_minor <= current.refunded_minor:
            return current
        due = _share(current, amount_refunded_minor) - (current.clawed_back + current.unrecovered)
        current.refunded_minor = amount_refunded_minor
        if due > 0:
            reason = f"Refund of purchase {current.public_id}"
            refreeze = current.dispute_status == Purchase.DisputeStatus.OPEN and _unfreeze(current, reason)
            _claw_back(current, due, reason)
            if refreeze:
                _freeze(current, current.dispute_id)
        current.status = current.derived_status()
        current.save(
            update_fields=["refunded_minor", "clawed_back", "unrecovered", "dispute_hold", "status", "updated_at"]
        )
        return current


def purchase_dispute_open(*, purchase: Purchase, dispute_id: str) -> Purchase:
    """Freeze what is left of the purchase's credits with a hold, and alert staff. Once per purchase."""
    with transaction.atomic():
        current = Purchase.objects.select_for_update().select_related("account", "credit_type").get(pk=purchase.pk)
        if current.grant_entry_id is None or current.dispute_status:
            return current
        _freeze(current, dispute_id)
        current.dispute_id, current.dispute_status = dispute_id, Purchase.DisputeStatus.OPEN
        current.status = current.derived_status()
        current.save(update_fields=["dispute_hold", "dispute_id", "dispute_status", "status", "updated_at"])
        staff_alert(
            f"Dispute {dispute_id} opened on purchase {current.public_id}; its credits are frozen.",
            purchase=current.public_id,
            account=current.account.public_id,
            dispute=dispute_id,
        )
        return current


def purchase_dispute_close(*, purchase: Purchase, dispute_id: str, won: bool, amount_minor: int) -> Purchase:
    """Release the freeze, whatever else happened meanwhile (a refund); lost: also claw back the
    disputed share (never below zero). The status is then derived: refunded if fully refunded or
    lost, else paid. Once per dispute."""
    with transaction.atomic():
        current = Purchase.objects.select_for_update().select_related("account", "credit_type").get(pk=purchase.pk)
        if current.dispute_status != Purchase.DisputeStatus.OPEN:
            return current  # never opened (the caller waits for the opening), or already closed
        _unfreeze(current, f"Dispute {dispute_id} {'won' if won else 'lost'}")
        if not won:
            due = _share(current, amount_minor) - (current.clawed_back + current.unrecovered)
            if due > 0:
                _claw_back(current, due, f"Dispute {dispute_id} lost on purchase {current.public_id}")
        current.dispute_status = Purchase.DisputeStatus.WON if won else Purchase.DisputeStatus.LOST
        current.status = current.derived_status()
        current.save(update_fields=["dispute_status", "status", "clawed_back", "unrecovered", "updated_at"])
        return current
