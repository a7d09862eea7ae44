"""The request core shared by ``Client`` and ``AsyncClient``.

Everything but the I/O lives here: building a request (URL, headers, the
Idempotency-Key, the JSON body with amounts as strings), deciding whether an
attempt is retried and after how long, and turning an answer into an object
or a typed exception. The two clients only send and sleep.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from creditledger import errors
from creditledger.models import APIObject

__version__ = "0.1.0"

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
IDEMPOTENCY_HEADER = "Idempotency-Key"

# 502 and 504 come from a proxy in front of the API; 503 from the API itself
# (lock_timeout, service_unavailable: nothing was changed).
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_CODES = frozenset({"idempotency_key_in_use"})


def money(value: Decimal | str | int) -> str:
    """An amount as the API takes it: a plain decimal string. Floats are refused: they are not money."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"amounts are Decimal, str or int, never {type(value).__name__}: {value!r}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not an amount: {value!r}")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        Decimal(value)  # raises decimal.InvalidOperation for garbage, before any request
        return value
    raise TypeError(f"amounts are Decimal, str or int, not {type(value).__name__}")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def compact(data: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the arguments left unset (None), so the server applies its defaults."""
    return {k: v for k, v in data.items() if v is not None}


@dataclass
class Request:
    """One logical API call: its retries share everything here, the Idempotency-Key included."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    # A money-moving POST: sends an Idempotency-Key (generated unless given).
    idempotent: bool = False
    idempotency_key: str | None = None
    cast: Callable[[Any], Any] = APIObject.parse

    def __post_init__(self) -> None:
        if self.idempotent and self.idempotency_key is None:
            self.idempotency_key = str(uuid.uuid4())


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter; Retry-After wins when the server sends it.

    Retried: connection errors and timeouts (no answer), 502/503/504, and
    ``409 idempotency_key_in_use``. Never another 4xx: a decline is final.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_max: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def retryable_response(self, response: httpx.Response, payload: Any) -> bool:
        if response.status_code in RETRY_STATUSES:
            return True
        if response.status_code == 409 and isinstance(payload, dict):
            code = (payload.get("error") or {}).get("code") if isinstance(payload.get("error"), dict) else None
            return code in RETRY_CODES
        return False

    @staticmethod
    def retryable_exception(exc: BaseException) -> bool:
        return isinstance(exc, httpx.TransportError)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return self.rng.uniform(ceiling / 2, ceiling)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def decode(response: httpx.Response) -> Any:
    """The body as JSON (numbers as Decimal, never float), or its text when it is not JSON."""
    if not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return response.text


def cursor_of(page: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    """(items, cursor of the next page) of a list answer, in either shape the API has used.

    ``{"object": "list", "data": [...], "has_more": bool, "next_cursor": str|null}``, or
    ``{"next": url|null, "previous": url|null, "results": [...]}`` (the cursor is in ``next``).
    """
    if "data" in page:
        items = page.get("data") or []
        cursor = page.get("next_cursor")
        if page.get("has_more") is False:
            cursor = None
        return items, cursor or None
    items = page.get("results") or []
    next_url = page.get("next")
    if not next_url:
        return items, None
    values = parse_qs(urlsplit(next_url).query).get("cursor")
    return items, (values[0] if values else None)


class BaseClient:
    """Configuration and the request/response logic common to both clients."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        api_key = api_key or os.environ.get("CREDITLEDGER_API_KEY")
        if not api_key:
            raise errors.AuthenticationError("No API key: pass api_key= or set CREDITLEDGER_API_KEY.")
        self.api_key = api_key
        base = (base_url or os.environ.get("CREDITLEDGER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self.base_url = base
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.default_headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"creditledger-python/{__version__}",
            **(default_headers or {}),
        }

    def _build(self, request: Request) -> dict[str, Any]:
        headers = dict(self.default_headers)
        content = None
        if request.body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(request.body, default=_json_default, ensure_ascii=False).encode()
        if request.idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = request.idempotency_key
        return {
            "method": request.method,
            "url": self.base_url + request.path,
            "params": compact(request.params or {}) or None,
            "headers": headers,
            "content": content,
        }

    def _result(self, request: Request, response: httpx.Response, payload: Any) -> Any:
        headers = dict(response.headers)
        if response.status_code >= 400:
            raise errors.error_from_response(response.status_code, payload, headers)
        result = request.cast(payload)
        if isinstance(result, APIObject):
            result.__dict__["_headers"] = headers
            result.__dict__["_idempotency_key"] = request.idempotency_key
        return result

    @staticmethod
    def _no_answer(exc: BaseException) -> errors.CreditLedgerError:
        cls = errors.APITimeoutError if isinstance(exc, httpx.TimeoutException) else errors.APIConnectionError
        return cls(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
