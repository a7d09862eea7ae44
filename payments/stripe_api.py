"""The one way this project talks to Stripe: the official `stripe` library, configured from settings.

`STRIPE_API_BASE` is where the API is (Stripe's own by default); nothing
else changes with it. Every call that creates something passes an
idempotency key derived from our own ids, so a retry after a crash or a
timeout gets the first answer back rather than a second object.
"""

from __future__ import annotations

import stripe
from django.conf import settings

from payments.exceptions import PaymentsNotConfigured


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise PaymentsNotConfigured()
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def dashboard_url(object_id: str) -> str:
    """The Stripe dashboard page of an object, by its id's prefix ('' if unknown)."""
    paths = {
        "pi_": "payments",
        "ch_": "payments",
        "cs_": "checkout/sessions",
        "cus_": "customers",
        "sub_": "subscriptions",
    }
    paths.update({"evt_": "events", "dp_": "disputes", "in_": "invoices"})
    for prefix, path in paths.items():
        if object_id.startswith(prefix):
            return f"{settings.STRIPE_DASHBOARD_URL.rstrip('/')}/{path}/{object_id}"
    return ""
