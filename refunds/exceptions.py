"""Refund errors: each has a stable code and HTTP status (rendered by config.errors)."""

from decimal import Decimal

from config.errors import DomainError, InvalidRequest, NotFound


class ChargeNotFound(NotFound):
    code = "charge_not_found"
    message = "No such charge."


class NotACharge(DomainError):
    code = "not_a_charge"
    status = 422
    message = "Only charges can be refunded."


class InvalidRefundReason(InvalidRequest):
    code = "invalid_refund_reason"
    message = "Unknown refund reason."


class RefundExceedsCharge(DomainError):
    """The refund would take the refunds of this charge past the charge itself.

    Replayable: a retry with the same Idempotency-Key gets the same refusal.
    """

    code = "refund_exceeds_charge"
    status = 409
    replayable = True

    def __init__(self, *, refundable: Decimal, requested: Decimal, message: str | None = None) -> None:
        super().__init__(
            message or f"At most {refundable} of this charge remains refundable; {requested} was asked.",
            refundable=f"{refundable}",
            requested=f"{requested}",
        )


class ChargeFullyRefunded(RefundExceedsCharge):
    code = "charge_fully_refunded"

    def __init__(self, *, quantum: Decimal = Decimal(1)) -> None:
        super().__init__(
            refundable=Decimal(0), requested=Decimal(0), message="This charge has already been refunded in full."
        )
        # At the credit type's scale, like every amount the API shows ("0.00").
        self.details = {"refundable": format(Decimal(0).quantize(quantum), "f")}
