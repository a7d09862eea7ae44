"""Billing errors: each has a stable code and HTTP status (rendered by config.errors)."""

from decimal import ROUND_HALF_UP, Decimal

from config import metrics
from config.errors import DomainError, InvalidRequest, NotFound


class InvalidAmount(InvalidRequest):
    code = "invalid_amount"
    message = "Amount must be a positive decimal string."


class AmountTooLarge(DomainError):
    code = "amount_too_large"
    status = 422
    message = "The amount would take the balance past what the ledger can hold."


def _at_scale(value: Decimal, scale: int) -> Decimal:
    """An amount at its credit type's scale, as every body shows amounts."""
    return value.quantize(Decimal(1).scaleb(-scale))


def _approximate(value: Decimal, scale: int) -> Decimal:
    """A balance for an error: at the scale, but never finer than 2 decimals (exact balances stay out of errors)."""
    return value.quantize(Decimal(1).scaleb(-min(scale, 2)), rounding=ROUND_HALF_UP)


class InsufficientCredits(DomainError):
    """The wallet cannot cover the amount.

    Carries the available balance rounded to 2 decimals only: exact balances
    do not belong in error messages or logs.
    """

    code = "insufficient_credits"
    status = 402
    replayable = True

    def __init__(self, *, available: Decimal, required: Decimal, scale: int = 2) -> None:
        self.available = _approximate(available, scale)
        self.required = _at_scale(required, scale)
        super().__init__(
            f"Insufficient credits: about {self.available} available, {self.required} required.",
            available=f"{self.available}",
            required=f"{self.required}",
        )
        # Counted where it is raised: every refusal, whether the API stores it
        # for replay or a caller handles it.
        metrics.INSUFFICIENT_CREDITS.inc()


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status = 409
    message = "This Idempotency-Key was used with different parameters or another endpoint."


class IdempotencyKeyInUse(DomainError):
    code = "idempotency_key_in_use"
    status = 409
    message = "A request with this Idempotency-Key is still in progress; retry shortly."


class IdempotencyKeyRequired(InvalidRequest):
    code = "idempotency_key_required"
    message = "Money-moving requests need an Idempotency-Key header (1 to 255 printable ASCII characters)."


class InvalidIdempotencyKey(InvalidRequest):
    code = "invalid_idempotency_key"
    message = "Idempotency-Key must be 1 to 255 printable ASCII characters."


# --- holds -----------------------------------------------------------------


class HoldNotFound(NotFound):
    code = "hold_not_found"
    message = "No such hold."


class HoldOwnedByService(DomainError):
    """An account key may capture or release only the holds it opened; this one the service opened."""

    code = "hold_owned_by_service"
    status = 403
    message = "This hold was opened by the service (or staff): only a service key may capture or release it."


class HoldOwnedByAnotherKey(DomainError):
    """An account key may capture or release only the holds it opened; another key of the account opened this one."""

    code = "hold_owned_by_another_key"
    status = 403
    message = "This hold was opened with another API key: only that key or a service key may capture or release it."


class HoldNotPending(DomainError):
    """The hold was already captured, released or expired with another outcome.

    Replayable: once a hold is resolved, the same request always gets this answer.
    """

    code = "hold_not_pending"
    status = 409
    replayable = True

    def __init__(self, *, hold_id: str, status: str) -> None:
        super().__init__(f"Hold {hold_id} is already {status}.", hold=hold_id, hold_status=status)


class InvalidExpiresIn(InvalidRequest):
    code = "invalid_expires_in"
    message = "expires_in is out of range."


# --- plans and daily limits --------------------------------------------------


class DailyLimitExceeded(DomainError):
    """The charge would take today's spending past the account's daily limit.

    Like InsufficientCredits it shows the remaining allowance rounded to 2
    decimals only.
    """

    code = "daily_limit_exceeded"
    status = 429
    replayable = True

    def __init__(self, *, remaining: Decimal, required: Decimal, resets_at: str, scale: int = 2) -> None:
        self.remaining = _approximate(max(remaining, Decimal(0)), scale)
        required = _at_scale(required, scale)
        super().__init__(
            f"Daily limit reached: about {self.remaining} left today, {required} required.",
            remaining=f"{self.remaining}",
            required=f"{required}",
            resets_at=resets_at,
        )


class InvalidGrantTerms(InvalidRequest):
    code = "invalid_grant_terms"
    message = "expires_at must be in the future and priority between -1000 and 1000."
