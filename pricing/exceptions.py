"""Pricing errors: each has a stable code and HTTP status (rendered by config.errors).

None of them is replayable: a missing or anomalous price is a configuration
problem, so nothing is stored under the Idempotency-Key and a retry after
the operator fixes the catalogue goes through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

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


class UsageProblem(NamedTuple):
    """One thing wrong with a usage: the count it concerns (None: the usage itself), a code, a message."""

    field: str | None
    code: str  # not_an_object, unknown_field, not_an_integer, negative, too_large
    message: str


class InvalidUsage(InvalidRequest):
    """A usage that is not a JSON object of bounded, non-negative integer counts.

    The message and `param` name the first problem; `problems` lists them all
    (the API's `UsageField` answers one field error per problem).
    """

    code = "invalid_usage"
    message = "Usage values must be non-negative integers within bounds."

    def __init__(self, message: str | None = None, *, problems: Sequence[UsageProblem] = (), **details: Any) -> None:
        super().__init__(message, **details)
        self.problems = list(problems)


class InvalidPriceSheet(InvalidRequest):
    code = "invalid_price_sheet"
    message = "The price sheet is invalid; nothing was imported."


class InvalidPriceKey(InvalidRequest):
    code = "invalid_price_key"
    message = "A price key is 1-200 characters: letters, digits and . _ : / @ + -."


class AnomalyResolvePermissionRequired(DomainError):
    code = "anomaly_resolve_permission_required"
    status = 403
    message = "Marking pricing anomalies resolved needs the pricing.resolve_pricinganomaly permission."
