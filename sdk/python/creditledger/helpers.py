"""Charge-then-work and hold-then-capture as context managers (seed 003).

``client.charge(...)`` charges on entry; if the block raises, the charge is
refunded with a reason derived from the exception, the route and the error
message, and the exception propagates. ``client.hold(...)`` reserves on
entry; ``h.capture(...)`` charges the real usage; any exception, or leaving
the block without capturing, releases the hold.

Refunding needs a **service** key: the API refuses refunds to account keys
(``403 permission_denied``). With an account key the refund fails; the
original exception still propagates, with a note saying the refund failed
(and ``c.refund_error`` holds the error).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from creditledger import errors
from creditledger.models import Hold, LedgerEntry, Refund

logger = logging.getLogger("creditledger")

# The reasons the server accepts (refunds.models.RefundLog.Reason).
REFUND_REASONS = (
    "api_error",
    "timeout",
    "backend_failure",
    "uncaught_exception",
    "parsing_error",
    "customer_service",
    "duplicate",
    "other",
)
ERROR_MESSAGE_MAX = 10_000
RELEASE_REASON_MAX = 1_000


def _names(exc: BaseException) -> list[str]:
    return [cls.__name__.lower() for cls in type(exc).__mro__]


def _status_of(exc: BaseException) -> int | None:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def refund_reason_for(exc: BaseException) -> str:
    """The refund reason for what went wrong in the work a charge paid for.

    * a timeout (``TimeoutError``, ``httpx.TimeoutException``, any ``…Timeout…`` class) → ``timeout``
    * a connection failure (``ConnectionError``, ``httpx.TransportError``, any ``…Connection…`` class)
      or a 5xx answer from the backend (``httpx.HTTPStatusError``, or an exception with a
      ``status_code`` ≥ 500) → ``backend_failure``
    * a response that could not be parsed (``json.JSONDecodeError``) → ``parsing_error``
    * anything else → ``other``
    """
    names = _names(exc)
    if isinstance(exc, TimeoutError | httpx.TimeoutException) or any("timeout" in n for n in names):
        return "timeout"
    if isinstance(exc, ConnectionError | httpx.TransportError) or any("connection" in n for n in names):
        return "backend_failure"
    status = _status_of(exc)
    if status is not None and 500 <= status <= 599:
        return "backend_failure"
    if isinstance(exc, json.JSONDecodeError):
        return "parsing_error"
    return "other"


def error_message_for(exc: BaseException) -> str:
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return message[:ERROR_MESSAGE_MAX]


def _note(exc: BaseException, text: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(text)


class _ChargeBase:
    entry: LedgerEntry | Any | None
    refund_result: Refund | None
    refund_error: BaseException | None

    def __init__(
        self,
        client: Any,
        account: str | None,
        *,
        route: str | None,
        reason_for: Callable[[BaseException], str] | None,
        charge_kwargs: dict[str, Any],
    ) -> None:
        self._client = client
        self._account = account
        self.route = route
        self._reason_for = reason_for or refund_reason_for
        self._charge_kwargs = charge_kwargs
        self.entry = None
        self.refund_result = None
        self.refund_error = None

    @property
    def id(self) -> str | None:
        """The charge's ledger entry id (None for a zero charge, which moved nothing)."""
        return self.entry.get("id") if self._is_charge else None

    @property
    def amount(self) -> Any:
        """What was charged, as a positive Decimal."""
        return -self.entry["amount"] if self._is_charge else Decimal(0)

    @property
    def refunded(self) -> bool:
        return self.refund_result is not None

    @property
    def _is_charge(self) -> bool:
        return isinstance(self.entry, dict) and self.entry.get("object") == "ledger_entry"

    def _refund_args(self, reason: str, error_message: str, exc: BaseException | None) -> dict[str, Any]:
        metadata = {"source": "creditledger-python charge helper"}
        if exc is not None:
            metadata["exception_type"] = type(exc).__name__
        return {
            "reason": reason,
            "api_route": self.route,
            "error_message": error_message[:ERROR_MESSAGE_MAX],
            "metadata": metadata,
            # One refund per charge from the helper, whatever retries happen.
            "idempotency_key": f"creditledger-sdk-refund:{self.id}",
        }

    def _refund_failed(self, exc: BaseException, error: BaseException) -> None:
        self.refund_error = error
        logger.error("could not refund charge %s after %s: %s", self.id, type(exc).__name__, error)
        _note(exc, f"creditledger: refunding charge {self.id} failed: {error!r}")


class ChargeContext(_ChargeBase):
    """``with client.charge(account, amount=..., route=...) as c:``. See the module docstring."""

    def __enter__(self) -> ChargeContext:
        self.entry = self._client.charges.create(self._account, route=self.route, **self._charge_kwargs)
        return self

    def refund(self, reason: str = "other", error_message: str = "", *, exc: BaseException | None = None) -> Refund:
        """Refund the charge now (e.g. the backend answered with a fallback); leaving the block adds nothing."""
        self.refund_result = self._client.refunds.create(self.id, **self._refund_args(reason, error_message, exc))
        return self.refund_result

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not self._is_charge or self.refunded:
            return False
        try:
            self.refund(self._reason_for(exc), error_message_for(exc), exc=exc)
        except Exception as error:  # the caller's exception matters more: keep it, note ours
            self._refund_failed(exc, error)
        return False


class AsyncChargeContext(_ChargeBase):
    """``async with client.charge(account, amount=..., route=...) as c:``."""

    async def __aenter__(self) -> AsyncChargeContext:
        self.entry = await self._client.charges.create(self._account, route=self.route, **self._charge_kwargs)
        return self

    async def refund(
        self, reason: str = "other", error_message: str = "", *, exc: BaseException | None = None
    ) -> Refund:
        self.refund_result = await self._client.refunds.create(self.id, **self._refund_args(reason, error_message, exc))
        return self.refund_result

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or not self._is_charge or self.refunded:
            return False
        try:
            await self.refund(self._reason_for(exc), error_message_for(exc), exc=exc)
        except Exception as error:
            self._refund_failed(exc, error)
        return False


class _HoldBase:
    hold: Hold | None

    def __init__(self, client: Any, hold_kwargs: dict[str, Any]) -> None:
        self._client = client
        self._hold_kwargs = hold_kwargs
        self.hold = None
        self.release_error: BaseException | None = None

    @property
    def id(self) -> str | None:
        return self.hold["id"] if self.hold else None

    @property
    def status(self) -> str | None:
        return self.hold["status"] if self.hold else None

    @property
    def resolved(self) -> bool:
        return self.status not in (None, "pending")

    @staticmethod
    def _reason(exc: BaseException | None) -> str:
        if exc is None:
            return "not captured: left the block without capturing"
        return f"exception: {error_message_for(exc)}"[:RELEASE_REASON_MAX]


class HoldContext(_HoldBase):
    """``with client.hold(account, price_key=..., estimated_usage=...) as h: ...; h.capture(usage=...)``."""

    def __enter__(self) -> HoldContext:
        self.hold = self._client.holds.create(**self._hold_kwargs)
        return self

    def capture(self, *, amount: Any = None, usage: Any = None, **kwargs: Any) -> Hold:
        """Charge the real `usage` (priced by the hold's key) or `amount`; the rest is freed."""
        self.hold = self._client.holds.capture(self.id, amount=amount, usage=usage, **kwargs)
        return self.hold

    def release(self, reason: str | None = None) -> Hold:
        self.hold = self._client.holds.release(self.id, reason=reason)
        return self.hold

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.hold is None or self.resolved:
            return False
        try:
            self.release(self._reason(exc))
        except errors.HoldNotPending:
            pass  # captured, released or expired meanwhile: nothing held any more
        except Exception as error:
            self.release_error = error
            if exc is None:
                raise
            _note(exc, f"creditledger: releasing hold {self.id} failed: {error!r}")
        return False


class AsyncHoldContext(_HoldBase):
    """``async with client.hold(...) as h: ...; await h.capture(usage=...)``."""

    async def __aenter__(self) -> AsyncHoldContext:
        self.hold = await self._client.holds.create(**self._hold_kwargs)
        return self

    async def capture(self, *, amount: Any = None, usage: Any = None, **kwargs: Any) -> Hold:
        self.hold = await self._client.holds.capture(self.id, amount=amount, usage=usage, **kwargs)
        return self.hold

    async def release(self, reason: str | None = None) -> Hold:
        self.hold = await self._client.holds.release(self.id, reason=reason)
        return self.hold

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.hold is None or self.resolved:
            return False
        try:
            await self.release(self._reason(exc))
        except errors.HoldNotPending:
            pass
        except Exception as error:
            self.release_error = error
            if exc is None:
                raise
            _note(exc, f"creditledger: releasing hold {self.id} failed: {error!r}")
        return False
