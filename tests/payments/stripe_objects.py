"""Real objects in localstripe, made through the official library (as a customer's browser and Stripe would)."""

from __future__ import annotations

from payments.stripe_api import stripe_client

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


def customer_with_card(number: str = GOOD_CARD) -> tuple[str, str]:
    """(customer id, payment method id); a declined card is not attached (Stripe refuses to)."""
    client = stripe_client()
    customer = client.v1.customers.create(params={"email": "buyer@example.test"})
    method = client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
    )
    if number == GOOD_CARD:
        client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return customer.id, method.id
