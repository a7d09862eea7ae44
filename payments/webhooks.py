"""The Stripe webhook receiver: verify, store once, acknowledge; a task processes the event.

Not part of the client API (no API key: Stripe signs the request instead),
so it is a plain Django view outside /api/v1 and outside the OpenAPI schema.
"""

from __future__ import annotations

import json
import logging

import stripe
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.services.events import stripe_event_store

logger = logging.getLogger(__name__)


def _refuse(code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=400)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """400 and nothing stored unless the `Stripe-Signature` verifies against STRIPE_WEBHOOK_SECRET in time."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    signature = request.headers.get("Stripe-Signature", "")
    if not secret:
        return _refuse("webhook_not_configured", "STRIPE_WEBHOOK_SECRET is not set; no event is accepted.")
    try:
        stripe.Webhook.construct_event(request.body, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_S)
        payload = json.loads(request.body)
    except stripe.SignatureVerificationError:
        logger.warning("Stripe webhook refused: bad or stale signature")
        return _refuse("invalid_signature", "The Stripe-Signature does not verify (or is too old).")
    except ValueError:
        return _refuse("invalid_payload", "The body is not a Stripe event.")
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str) or "data" not in payload:
        return _refuse("invalid_payload", "The body is not a Stripe event.")
    event, created = stripe_event_store(payload=payload, source="webhook")
    return JsonResponse({"received": True, "id": event.stripe_id, "duplicate": not created})
