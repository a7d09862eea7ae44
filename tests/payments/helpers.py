"""Builders for the Stripe objects the webhook tests send (the fields our handlers read)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from billing.core import Actor
from billing.services import charge_create
from payments.models import Purchase
from payments.services.events import stripe_event_process, stripe_event_store
from tests.factories import PurchaseFactory
from tests.payments.conftest import event


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def checkout_completed(purchase: Purchase, *, payment_intent: str | None = None, **kwargs) -> dict:
    session = {
        "id": purchase.stripe_checkout_session_id or new_id("cs_test"),
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid",
        "status": "complete",
        "client_reference_id": purchase.public_id,
        "metadata": {"purchase": purchase.public_id, "account": purchase.account.public_id},
        "payment_intent": payment_intent or new_id("pi"),
        "customer": new_id("cus"),
        "amount_total": purchase.amount_minor,
    }
    return event("checkout.session.completed", session, **kwargs)


def charge_refunded(purchase: Purchase, amount_refunded: int, **kwargs) -> dict:
    charge = {
        "id": purchase.stripe_charge_id or new_id("ch"),
        "object": "charge",
        "payment_intent": purchase.stripe_payment_intent_id,
        "amount": purchase.amount_minor,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded >= purchase.amount_minor,
        "metadata": {},
    }
    return event("charge.refunded", charge, **kwargs)


def dispute(purchase: Purchase, type_: str, status: str, dispute_id: str = "dp_test_1", **kwargs) -> dict:
    obj = {
        "id": dispute_id,
        "object": "dispute",
        "charge": purchase.stripe_charge_id or new_id("ch"),
        "payment_intent": purchase.stripe_payment_intent_id,
        "amount": purchase.amount_minor,
        "status": status,
    }
    return event(type_, obj, **kwargs)


def deliver(payload: dict):
    """Store and process an event, as the receiver and its task do."""
    stored, _ = stripe_event_store(payload=payload)
    return stripe_event_process(event_id=stored.pk)


def paid_purchase(**kwargs) -> Purchase:
    """A checkout purchase whose payment was reported: its credits granted as a purchased lot."""
    purchase = PurchaseFactory(**kwargs)
    deliver(checkout_completed(purchase))
    purchase.refresh_from_db()
    assert purchase.status == "paid"
    return purchase


def spend(purchase: Purchase, amount: str) -> None:
    charge_create(
        account=purchase.account, credit_type=purchase.credit_type, amount=Decimal(amount), actor=Actor.system()
    )
