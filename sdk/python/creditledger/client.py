"""`Client` (blocking) and `AsyncClient` (asyncio), over one request core (`_core.BaseClient`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from creditledger import errors
from creditledger._core import BaseClient, Request, RetryPolicy, decode, retry_after_seconds
from creditledger.helpers import AsyncChargeContext, AsyncHoldContext, ChargeContext, HoldContext
from creditledger.pagination import AsyncPager, Pager
from creditledger.resources import (
    Accounts,
    Alerts,
    Amount,
    Charges,
    Events,
    Grants,
    Holds,
    Payments,
    Prices,
    Quotes,
    Refunds,
    Usage,
    WebhookEndpoints,
)


class _Resources:
    def _attach(self) -> None:
        self.accounts = Accounts(self)
        self.grants = Grants(self)
        self.charges = Charges(self)
        self.quotes = Quotes(self)
        self.prices = Prices(self)
        self.holds = Holds(self)
        self.refunds = Refunds(self)
        self.events = Events(self)
        self.webhook_endpoints = WebhookEndpoints(self)
        self.alerts = Alerts(self)
        self.payments = Payments(self)

    @staticmethod
    def _hold_kwargs(account: str | None, **kwargs: Any) -> dict[str, Any]:
        return {"account": account, **kwargs}


class Client(BaseClient, _Resources):
    """The blocking client.

    >>> client = Client("clk_…", base_url="https://ledger.example.com")
    >>> entry = client.charges.create(account_id, amount=Decimal("2.50"), route="/api/generate")

    Every call retries connection errors, timeouts, 502/503/504 (after
    Retry-After) and ``409 idempotency_key_in_use`` with exponential backoff
    and jitter, `max_retries` times; money-moving POSTs carry one
    Idempotency-Key (generated unless given) across all their attempts.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            default_headers=default_headers,
        )
        self._http = http_client or httpx.Client(timeout=self.timeout)
        self._owns_http = http_client is None
        self._sleep = sleep
        self._attach()

    def _execute(self, request: Request) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(**self._build(request))
            except httpx.TransportError as exc:
                if attempt > self.retry.max_retries:
                    raise self._no_answer(exc) from exc
                self._sleep(self.retry.delay(attempt))
                continue
            payload = decode(response)
            if attempt <= self.retry.max_retries and self.retry.retryable_response(response, payload):
                self._sleep(self.retry.delay(attempt, retry_after_seconds(response.headers)))
                continue
            return self._result(request, response, payload)

    def _paginate(self, request: Request) -> Pager:
        return Pager(self, request)

    def charge(
        self,
        account: str | None = None,
        *,
        amount: Amount | None = None,
        key: str | None = None,
        usage: Usage | None = None,
        route: str | None = None,
        reason_for: Callable[[BaseException], str] | None = None,
        **charge_kwargs: Any,
    ) -> ChargeContext:
        """``with client.charge(account, amount=..., route=...) as c:`` charge now, refund if the block raises.

        The refund's reason comes from `reason_for(exc)` (default
        `helpers.refund_reason_for`: timeout, backend_failure, parsing_error,
        other), with the route and the error message. Needs a service key.
        """
        kwargs = {"amount": amount, "key": key, "usage": usage, **charge_kwargs}
        return ChargeContext(self, account, route=route, reason_for=reason_for, charge_kwargs=kwargs)

    def hold(
        self,
        account: str | None = None,
        *,
        amount: Amount | None = None,
        price_key: str | None = None,
        estimated_usage: Usage | None = None,
        **hold_kwargs: Any,
    ) -> HoldContext:
        """``with client.hold(account, price_key=..., estimated_usage=...) as h:`` … ``h.capture(usage=...)``.

        Any exception, or leaving the block without capturing, releases the hold.
        """
        kwargs = self._hold_kwargs(
            account, amount=amount, price_key=price_key, estimated_usage=estimated_usage, **hold_kwargs
        )
        return HoldContext(self, kwargs)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncClient(BaseClient, _Resources):
    """The asyncio client: the same methods as `Client`, awaited; lists are ``async for`` pagers.

    >>> async with AsyncClient("clk_…") as client:
    ...     entry = await client.charges.create(account_id, amount="2.50")
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        super().__init__(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            default_headers=default_headers,
        )
        self._http = http_client or httpx.AsyncClient(timeout=self.timeout)
        self._owns_http = http_client is None
        self._sleep = sleep
        self._attach()

    async def _execute(self, request: Request) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(**self._build(request))
            except httpx.TransportError as exc:
                if attempt > self.retry.max_retries:
                    raise self._no_answer(exc) from exc
                await self._sleep(self.retry.delay(attempt))
                continue
            payload = decode(response)
            if attempt <= self.retry.max_retries and self.retry.retryable_response(response, payload):
                await self._sleep(self.retry.delay(attempt, retry_after_seconds(response.headers)))
                continue
            return self._result(request, response, payload)

    def _paginate(self, request: Request) -> AsyncPager:
        return AsyncPager(self, request)

    def charge(
        self,
        account: str | None = None,
        *,
        amount: Amount | None = None,
        key: str | None = None,
        usage: Usage | None = None,
        route: str | None = None,
        reason_for: Callable[[BaseException], str] | None = None,
        **charge_kwargs: Any,
    ) -> AsyncChargeContext:
        """``async with client.charge(...) as c:``; see `Client.charge`."""
        kwargs = {"amount": amount, "key": key, "usage": usage, **charge_kwargs}
        return AsyncChargeContext(self, account, route=route, reason_for=reason_for, charge_kwargs=kwargs)

    def hold(
        self,
        account: str | None = None,
        *,
        amount: Amount | None = None,
        price_key: str | None = None,
        estimated_usage: Usage | None = None,
        **hold_kwargs: Any,
    ) -> AsyncHoldContext:
        """``async with client.hold(...) as h:``; see `Client.hold`."""
        kwargs = self._hold_kwargs(
            account, amount=amount, price_key=price_key, estimated_usage=estimated_usage, **hold_kwargs
        )
        return AsyncHoldContext(self, kwargs)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


__all__ = ["AsyncClient", "Client", "errors"]
