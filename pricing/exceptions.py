"""Pricing errors: each has a stable code and HTTP status (rendered by config.errors).

None of them is replayable: a missing or anomalous price is a configuration
problem, so nothing is stored under the Idempotency-Key and a retry after
the operator fixes the catalogue goes through.
"""

from config.errors import DomainError, InvalidRequest, NotFound


class CreditTypeNotFound(NotFound):
    code = "credit_type_not_found"
    message = "No such credit type."


class PriceNotConfigured(DomainError):
    code = "price_not_configured"
    status = 422
    message = "No price is configured for this key; nothing was charged."


class PricingAnomaly(DomainError):
    code = "pricing_anomaly"
    status = 422
    message = "The price for this key is outside the configured sanity bounds; nothing was charged."


class InvalidUsage(InvalidRequest):
    code = "invalid_usage"
    message = "Usage values must be non-negative integers within bounds."


class InvalidPriceSheet(InvalidRequest):
    code = "invalid_price_sheet"
    message = "The price sheet is invalid; nothing was imported."


class InvalidPriceKey(InvalidRequest):
    code = "invalid_price_key"
    message = "A price key is 1-200 characters: letters, digits and . _ : / @ + -."
