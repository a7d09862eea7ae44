"""Payments errors: each has a stable code and HTTP status (rendered by config.errors)."""

from config.errors import DomainError, InvalidRequest, NotFound


class PackNotFound(NotFound):
    code = "pack_not_found"
    message = "No active credit pack with this id."


class PaymentProviderError(DomainError):
    """Stripe refused or could not be reached; nothing was charged by us. Not replayed: a retry may succeed."""

    code = "payment_provider_error"
    status = 502
    message = "The payment provider could not complete the request; retry with the same Idempotency-Key."


class PaymentsNotConfigured(DomainError):
    code = "payments_not_configured"
    status = 503
    message = "Payments are not configured on this server (STRIPE_SECRET_KEY)."


class InvalidAutoRecharge(InvalidRequest):
    code = "invalid_auto_recharge"
