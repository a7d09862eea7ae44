"""Real objects in localstripe, made through the official library (as a customer's browser and Stripe would)."""

from __future__ import annotations

from payments.stripe_api import stripe_client

GOOD_CARD = "4242424242424242"
# Attaches to a customer, then every charge on it is declined (as in Stripe's test mode).
DECLINED_CARD = "4000000000000341"


def customer_with_card(number: str = GOOD_CARD) -> tuple[str, str]:
    """(customer id, payment method id), the card attached to the customer."""
    client = stripe_client()
    customer = client.v1.customers.create(params={"email": "buyer@example.test"})
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return customer.id, method.id


def payment_intent(*, amount: int = 1000, currency: str = "usd", metadata: dict | None = None) -> str:
    """A PaymentIntent's id, carrying `metadata` (our checkout puts the purchase's id there)."""
    intent = stripe_client().v1.payment_intents.create(
        params={"amount": amount, "currency": currency, "metadata": metadata or {}}
    )
    return intent.id


def subscription(*, metadata: dict) -> dict:
    """A real, active subscription (a free monthly plan, so its first invoice is paid at once), as a dict."""
    client = stripe_client()
    customer = client.v1.customers.create(params={"email": "subscriber@example.test"})
    plan = client.v1.plans.create(
        params={"amount": 0, "currency": "usd", "interval": "month", "product": {"name": "Pro"}}
    )
    created = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}], "metadata": metadata}
    )
    return created.to_dict(for_json=True)
