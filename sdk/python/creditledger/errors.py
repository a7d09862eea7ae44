"""Typed exceptions, one per error code the API documents.

Every API error has the body ``{"error": {"code", "message", ...}}``. The
client raises the class registered for ``code``; a code this version does
not know maps to the class for its HTTP status, else to ``CreditLedgerError``.
Switch on the class (or ``.code``), never on the message.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AccountExists",
    "AccountNotFound",
    "AccountSuspended",
    "AmountTooLarge",
    "AuthenticationError",
    "ChargeFullyRefunded",
    "ChargeNotFound",
    "Conflict",
    "CreditLedgerError",
    "CreditTypeNotFound",
    "DailyLimitExceeded",
    "DuplicateKey",
    "HoldNotFound",
    "HoldNotPending",
    "HoldOwnedByAnotherKey",
    "HoldOwnedByService",
    "IdempotencyKeyInUse",
    "IdempotencyKeyRequired",
    "IdempotencyKeyReused",
    "InsufficientCredits",
    "InternalServerError",
    "InvalidCursor",
    "InvalidIdempotencyKey",
    "InvalidRequest",
    "LockTimeout",
    "MethodNotAllowed",
    "NotACharge",
    "NotFound",
    "PermissionDenied",
    "PriceNotConfigured",
    "PricingAnomaly",
    "RateLimited",
    "RefundExceedsCharge",
    "RequestTooLarge",
    "ServiceUnavailable",
    "UnknownField",
    "Unprocessable",
    "UnsupportedMediaType",
    "ValidationError",
    "error_from_response",
]


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


class CreditLedgerError(Exception):
    """Base of every error the client raises.

    ``code`` is the API's stable error code, ``status`` the HTTP status (None
    when no answer came back), ``param`` the first field at fault on a
    validation error, ``body`` the whole ``error`` object as sent.
    """

    default_code = "error"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        param: str | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.param = param
        self.body: dict[str, Any] = body or {}
        self.headers: dict[str, str] = headers or {}

    def __str__(self) -> str:
        where = f" [{self.status}]" if self.status else ""
        return f"{self.code}{where}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


# --- no answer -------------------------------------------------------------


class APIConnectionError(CreditLedgerError):
    """No HTTP answer after every retry (connection refused or dropped). The cause is chained."""

    default_code = "connection_error"


class APITimeoutError(APIConnectionError):
    """The request timed out on every attempt."""

    default_code = "timeout"


# --- 4xx ------------------------------------------------------------------


class InvalidRequest(CreditLedgerError):
    """400 and other client-side refusals: fix the request; never retried."""

    default_code = "invalid_request"


class ValidationError(InvalidRequest):
    """400 validation_error: ``param`` names the first field, ``fields`` has every per-field error."""

    default_code = "validation_error"

    @property
    def fields(self) -> dict[str, list[dict[str, str]]]:
        return self.body.get("fields") or {}


class IdempotencyKeyRequired(InvalidRequest):
    default_code = "idempotency_key_required"


class InvalidIdempotencyKey(InvalidRequest):
    default_code = "invalid_idempotency_key"


class InvalidCursor(InvalidRequest):
    default_code = "invalid_cursor"


class UnknownField(InvalidRequest):
    default_code = "unknown_field"


class DuplicateKey(InvalidRequest):
    """A JSON key or query parameter given twice."""

    default_code = "duplicate_key"


class MethodNotAllowed(InvalidRequest):
    default_code = "method_not_allowed"


class RequestTooLarge(InvalidRequest):
    default_code = "request_too_large"


class UnsupportedMediaType(InvalidRequest):
    default_code = "unsupported_media_type"


class AuthenticationError(CreditLedgerError):
    """401: no key, or a wrong or revoked one."""

    default_code = "authentication_failed"


class InsufficientCredits(CreditLedgerError):
    """402: ``available`` (rounded to 2 places by the server) is short of ``required``. Nothing changed."""

    default_code = "insufficient_credits"

    @property
    def available(self) -> Decimal | None:
        return _decimal(self.body.get("available"))

    @property
    def required(self) -> Decimal | None:
        return _decimal(self.body.get("required"))


class PermissionDenied(CreditLedgerError):
    """403, e.g. an account key on a service-only endpoint (grants, refunds)."""

    default_code = "permission_denied"


class AccountSuspended(PermissionDenied):
    default_code = "account_suspended"


class HoldOwnedByService(PermissionDenied):
    """An account key tried to capture or release a hold a service key opened."""

    default_code = "hold_owned_by_service"


class HoldOwnedByAnotherKey(PermissionDenied):
    """An account key tried to capture or release a hold another key of the account opened."""

    default_code = "hold_owned_by_another_key"


class NotFound(CreditLedgerError):
    default_code = "not_found"


class AccountNotFound(NotFound):
    default_code = "account_not_found"


class CreditTypeNotFound(NotFound):
    default_code = "credit_type_not_found"


class HoldNotFound(NotFound):
    default_code = "hold_not_found"


class ChargeNotFound(NotFound):
    default_code = "charge_not_found"


class Conflict(CreditLedgerError):
    default_code = "conflict"


class AccountExists(Conflict):
    default_code = "account_exists"


class HoldNotPending(Conflict):
    """The hold was already captured, released or expired: ``hold_status`` says which."""

    default_code = "hold_not_pending"

    @property
    def hold_status(self) -> str | None:
        return self.body.get("hold_status")


class RefundExceedsCharge(Conflict):
    default_code = "refund_exceeds_charge"

    @property
    def refundable(self) -> Decimal | None:
        return _decimal(self.body.get("refundable"))

    @property
    def requested(self) -> Decimal | None:
        return _decimal(self.body.get("requested"))


class ChargeFullyRefunded(RefundExceedsCharge):
    default_code = "charge_fully_refunded"


class IdempotencyKeyReused(Conflict):
    """The same Idempotency-Key was sent with another body or to another endpoint."""

    default_code = "idempotency_key_reused"


class IdempotencyKeyInUse(Conflict):
    """A request with this key is still running; retried automatically, raised once retries run out."""

    default_code = "idempotency_key_in_use"


class Unprocessable(CreditLedgerError):
    default_code = "unprocessable"


class PriceNotConfigured(Unprocessable):
    default_code = "price_not_configured"


class PricingAnomaly(Unprocessable):
    default_code = "pricing_anomaly"


class NotACharge(Unprocessable):
    default_code = "not_a_charge"


class AmountTooLarge(Unprocessable):
    default_code = "amount_too_large"


class RateLimited(CreditLedgerError):
    """429. Not retried: the only 429 the API sends today is a business decline."""

    default_code = "rate_limited"


class DailyLimitExceeded(RateLimited):
    """429: the account's daily limit; ``remaining`` (rounded), ``required``, ``resets_at``."""

    default_code = "daily_limit_exceeded"

    @property
    def remaining(self) -> Decimal | None:
        return _decimal(self.body.get("remaining"))

    @property
    def required(self) -> Decimal | None:
        return _decimal(self.body.get("required"))

    @property
    def resets_at(self) -> str | None:
        return self.body.get("resets_at")


# --- 5xx ------------------------------------------------------------------


class InternalServerError(CreditLedgerError):
    default_code = "internal_error"


class ServiceUnavailable(CreditLedgerError):
    """503: nothing was changed; retried automatically (after Retry-After), raised once retries run out."""

    default_code = "service_unavailable"


class LockTimeout(ServiceUnavailable):
    default_code = "lock_timeout"


_BY_CODE: dict[str, type[CreditLedgerError]] = {
    cls.default_code: cls
    for cls in (
        ValidationError,
        IdempotencyKeyRequired,
        InvalidIdempotencyKey,
        InvalidCursor,
        UnknownField,
        MethodNotAllowed,
        RequestTooLarge,
        UnsupportedMediaType,
        InsufficientCredits,
        PermissionDenied,
        AccountSuspended,
        HoldOwnedByService,
        HoldOwnedByAnotherKey,
        DuplicateKey,
        NotFound,
        AccountNotFound,
        CreditTypeNotFound,
        HoldNotFound,
        ChargeNotFound,
        AccountExists,
        HoldNotPending,
        RefundExceedsCharge,
        ChargeFullyRefunded,
        IdempotencyKeyReused,
        IdempotencyKeyInUse,
        PriceNotConfigured,
        PricingAnomaly,
        NotACharge,
        AmountTooLarge,
        RateLimited,
        DailyLimitExceeded,
        InternalServerError,
        ServiceUnavailable,
        LockTimeout,
    )
}
_BY_CODE["not_authenticated"] = AuthenticationError
_BY_CODE["authentication_failed"] = AuthenticationError

_BY_STATUS: dict[int, type[CreditLedgerError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    402: InsufficientCredits,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: RequestTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    429: RateLimited,
    500: InternalServerError,
    503: ServiceUnavailable,
}


def error_class(code: str | None, status: int) -> type[CreditLedgerError]:
    """The class for an error code; an unknown code falls back to its status's class, else the base."""
    if code and code in _BY_CODE:
        return _BY_CODE[code]
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 400 <= status < 500:
        return InvalidRequest
    return CreditLedgerError


def error_from_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> CreditLedgerError:
    """Build the typed exception for an error answer (any body shape, even not JSON)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        text = payload if isinstance(payload, str) else ""
        error = {"code": None, "message": text[:500] or f"HTTP {status}"}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    cls = error_class(code, status)
    return cls(
        str(error.get("message") or f"HTTP {status}"),
        code=code,
        status=status,
        param=error.get("param"),
        body=error,
        headers=headers,
    )
