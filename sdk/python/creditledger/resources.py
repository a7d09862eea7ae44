"""One class per API resource, shared by both clients.

A method builds a `Request` and hands it to its client: `Client` returns the
result, `AsyncClient` returns an awaitable of it (list methods return a
pager: iterate it with ``for`` or ``async for``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from creditledger._core import Request, compact, money
from creditledger.models import (
    Account,
    Balance,
    ChargeBatch,
    Hold,
    LedgerEntry,
    PriceList,
    Quote,
    Refund,
    RefundStats,
    Statement,
    ZeroCharge,
    charge_batch,
    charge_result,
    price_list,
)

if TYPE_CHECKING:
    from creditledger.pagination import Pager

Amount = Decimal | str | int
Usage = Mapping[str, int]


def _id(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"an object id is a non-empty string, not {value!r}")
    return quote(value, safe="")


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _amount(value: Amount | None) -> str | None:
    return None if value is None else money(value)


def _batch_item(item: Mapping[str, Any]) -> dict[str, Any]:
    body = compact({**item, "amount": _amount(item.get("amount"))})
    if "usage" in body:
        body["usage"] = dict(body["usage"])
    body.setdefault("idempotency_key", str(uuid.uuid4()))
    return body


class _Resource:
    def __init__(self, client: Any) -> None:
        self._client = client

    def _run(self, request: Request) -> Any:
        return self._client._execute(request)

    def _list(self, request: Request) -> Pager:
        return self._client._paginate(request)


class Accounts(_Resource):
    def list(self, *, external_id: str | None = None) -> Pager:
        """Accounts this key may see (newest first), optionally the one with `external_id`. A pager of `Account`."""
        return self._list(Request("GET", "/accounts", params={"external_id": external_id}, cast=Account.parse))

    def create(self, external_id: str, *, name: str | None = None, email: str | None = None) -> Account:
        """Create an account (service key). `AccountExists` if the external id is taken."""
        body = compact({"external_id": external_id, "name": name, "email": email})
        return self._run(Request("POST", "/accounts", body=body, cast=Account.parse))

    def retrieve(self, account_id: str) -> Account:
        return self._run(Request("GET", f"/accounts/{_id(account_id)}", cast=Account.parse))

    def balance(self, account_id: str, *, refresh: bool = False) -> Balance:
        """For display (a cache); ``refresh=True`` reads the database. Never decide a charge from it."""
        params = {"refresh": "true"} if refresh else None
        return self._run(Request("GET", f"/accounts/{_id(account_id)}/balance", params=params, cast=Balance.parse))

    def transactions(
        self,
        account_id: str,
        *,
        kind: str | None = None,
        task_id: str | None = None,
        route: str | None = None,
        credit_type: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        limit: int | None = None,
    ) -> Pager:
        """The account's ledger, newest first: a pager of `LedgerEntry` that follows cursors lazily."""
        params = {
            "kind": kind,
            "task_id": task_id,
            "route": route,
            "credit_type": credit_type,
            "created_after": _time(created_after),
            "created_before": _time(created_before),
            "limit": limit,
        }
        return self._list(
            Request("GET", f"/accounts/{_id(account_id)}/transactions", params=params, cast=LedgerEntry.parse)
        )

    def statement(
        self,
        account_id: str,
        *,
        credit_type: str | None = None,
        period_from: datetime | str | None = None,
        period_to: datetime | str | None = None,
    ) -> Statement:
        """Opening balance, every entry from `period_from` (inclusive) to `period_to` (exclusive), closing
        balance, and whether the hash chain over the period verifies (`chain_verified`)."""
        params = {"credit_type": credit_type, "from": _time(period_from), "to": _time(period_to)}
        return self._run(Request("GET", f"/accounts/{_id(account_id)}/statement", params=params, cast=Statement.parse))

    def holds(
        self,
        account_id: str,
        *,
        status: str | None = None,
        task_id: str | None = None,
        credit_type: str | None = None,
        limit: int | None = None,
    ) -> Pager:
        """The account's holds, newest first: a pager of `Hold`."""
        params = {"status": status, "task_id": task_id, "credit_type": credit_type, "limit": limit}
        return self._list(Request("GET", f"/accounts/{_id(account_id)}/holds", params=params, cast=Hold.parse))

    def refunds(
        self,
        account_id: str,
        *,
        reason: str | None = None,
        api_route: str | None = None,
        credit_type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
    ) -> Pager:
        """The account's refunds, newest first: a pager of `Refund`."""
        params = {
            "reason": reason,
            "api_route": api_route,
            "credit_type": credit_type,
            "since": _time(since),
            "until": _time(until),
            "limit": limit,
        }
        return self._list(Request("GET", f"/accounts/{_id(account_id)}/refunds", params=params, cast=Refund.parse))


class Grants(_Resource):
    def create(
        self,
        account: str,
        amount: Amount,
        *,
        reason: str | None = None,
        credit_type: str | None = None,
        task_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expires_at: datetime | str | None = None,
        priority: int | None = None,
        idempotency_key: str | None = None,
    ) -> LedgerEntry:
        """Add credits to an account (service key)."""
        body = compact(
            {
                "account": account,
                "amount": money(amount),
                "reason": reason,
                "credit_type": credit_type,
                "task_id": task_id,
                "metadata": metadata,
                "expires_at": _time(expires_at),
                "priority": priority,
            }
        )
        return self._run(
            Request(
                "POST", "/grants", body=body, idempotent=True, idempotency_key=idempotency_key, cast=LedgerEntry.parse
            )
        )


class Charges(_Resource):
    def create(
        self,
        account: str | None = None,
        *,
        amount: Amount | None = None,
        key: str | None = None,
        usage: Usage | None = None,
        credit_type: str | None = None,
        task_id: str | None = None,
        route: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> LedgerEntry | ZeroCharge:
        """Charge an explicit `amount`, or a price `key` with `usage`.

        Returns the `LedgerEntry` (its `amount` is negative), or a `ZeroCharge`
        when a priced charge came to zero. `InsufficientCredits` (402) and
        `DailyLimitExceeded` (429) change nothing. `account` may be omitted
        with an account key.
        """
        body = compact(
            {
                "account": account,
                "amount": _amount(amount),
                "key": key,
                "usage": dict(usage) if usage is not None else None,
                "credit_type": credit_type,
                "task_id": task_id,
                "route": route,
                "description": description,
                "metadata": metadata,
            }
        )
        return self._run(
            Request("POST", "/charges", body=body, idempotent=True, idempotency_key=idempotency_key, cast=charge_result)
        )

    def batch(self, items: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None) -> ChargeBatch:
        """Up to 100 charges in one call (usage reported after the fact); a `ChargeBatch`.

        Each item takes the fields of `create` (``account``, ``amount`` or
        ``key`` with ``usage``, ``task_id``, ...) and its own
        ``idempotency_key`` (one is generated for an item without one, and
        kept across this call's retries). Each item is answered on its own
        (``item.result`` or ``item.error``: a declined item raises nothing); an
        item whose key was already answered replays that answer.
        """
        body = {"items": [_batch_item(item) for item in items]}
        return self._run(
            Request(
                "POST", "/charges/batch", body=body, idempotent=True, idempotency_key=idempotency_key, cast=charge_batch
            )
        )

    def refund(self, charge_id: str, **kwargs: Any) -> Refund:
        """Same as ``refunds.create(charge_id, ...)``."""
        return Refunds(self._client).create(charge_id, **kwargs)


class Quotes(_Resource):
    def create(self, key: str, *, usage: Usage | None = None, credit_type: str | None = None) -> Quote:
        """What `usage` of `key` would cost now. Charges nothing."""
        body = compact({"key": key, "usage": dict(usage) if usage is not None else None, "credit_type": credit_type})
        return self._run(Request("POST", "/quotes", body=body, cast=Quote.parse))


class Prices(_Resource):
    def list(self, *, credit_type: str | None = None) -> PriceList:
        """The catalogue in force: a `PriceList` (``.data``: `Price` rows, ``.aliases``)."""
        return self._run(Request("GET", "/prices", params={"credit_type": credit_type}, cast=price_list))


class Holds(_Resource):
    def create(
        self,
        account: str | None = None,
        *,
        amount: Amount | None = None,
        price_key: str | None = None,
        estimated_usage: Usage | None = None,
        expires_in: int | None = None,
        on_expiry: str | None = None,
        credit_type: str | None = None,
        task_id: str | None = None,
        route: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Hold:
        """Reserve `amount`, or what `estimated_usage` of `price_key` costs. `InsufficientCredits` if unavailable."""
        body = compact(
            {
                "account": account,
                "amount": _amount(amount),
                "price_key": price_key,
                "estimated_usage": dict(estimated_usage) if estimated_usage is not None else None,
                "expires_in": expires_in,
                "on_expiry": on_expiry,
                "credit_type": credit_type,
                "task_id": task_id,
                "route": route,
                "metadata": metadata,
            }
        )
        return self._run(
            Request("POST", "/holds", body=body, idempotent=True, idempotency_key=idempotency_key, cast=Hold.parse)
        )

    def retrieve(self, hold_id: str) -> Hold:
        return self._run(Request("GET", f"/holds/{_id(hold_id)}", cast=Hold.parse))

    def capture(
        self,
        hold_id: str,
        *,
        amount: Amount | None = None,
        usage: Usage | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Hold:
        """Charge the final `amount` (may be 0) or `usage` (priced by the hold's key); free the rest."""
        body = compact(
            {"amount": _amount(amount), "usage": dict(usage) if usage is not None else None, "metadata": metadata}
        )
        return self._run(
            Request(
                "POST",
                f"/holds/{_id(hold_id)}/capture",
                body=body,
                idempotent=True,
                idempotency_key=idempotency_key,
                cast=Hold.parse,
            )
        )

    def release(self, hold_id: str, *, reason: str | None = None, idempotency_key: str | None = None) -> Hold:
        """Free the whole hold. `HoldNotPending` if it was already captured, released or expired."""
        return self._run(
            Request(
                "POST",
                f"/holds/{_id(hold_id)}/release",
                body=compact({"reason": reason}),
                idempotent=True,
                idempotency_key=idempotency_key,
                cast=Hold.parse,
            )
        )


class Refunds(_Resource):
    def create(
        self,
        charge_id: str,
        *,
        reason: str,
        amount: Amount | None = None,
        api_route: str | None = None,
        error_message: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """Refund a charge (service key), by default all that remains refundable.

        `reason` is one of ``api_error``, ``timeout``, ``backend_failure``,
        ``uncaught_exception``, ``parsing_error``, ``customer_service``,
        ``duplicate``, ``other``.
        """
        body = compact(
            {
                "reason": reason,
                "amount": _amount(amount),
                "api_route": api_route,
                "error_message": error_message,
                "metadata": metadata,
            }
        )
        return self._run(
            Request(
                "POST",
                f"/charges/{_id(charge_id)}/refunds",
                body=body,
                idempotent=True,
                idempotency_key=idempotency_key,
                cast=Refund.parse,
            )
        )

    def stats(
        self,
        *,
        api_route: str | None = None,
        credit_type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> RefundStats:
        """Count and totals by credit type, reason and route (an account key: its own)."""
        params = {"api_route": api_route, "credit_type": credit_type, "since": _time(since), "until": _time(until)}
        return self._run(Request("GET", "/refunds/stats", params=params, cast=RefundStats.parse))


class Events(_Resource):
    def list(
        self,
        *,
        type: str | None = None,
        account: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        limit: int | None = None,
    ) -> Pager:
        """Events of the last 30 days, newest first (an account key: its own): a pager of events."""
        params = {
            "type": type,
            "account": account,
            "created_after": _time(created_after),
            "created_before": _time(created_before),
            "limit": limit,
        }
        return self._list(Request("GET", "/events", params=params))

    def retrieve(self, event_id: str) -> Any:
        return self._run(Request("GET", f"/events/{_id(event_id)}"))


class WebhookEndpoints(_Resource):
    """Webhook endpoints (service key). The `secret` is in the answers of `create` and `rotate_secret` only."""

    def list(self, *, limit: int | None = None) -> Pager:
        return self._list(Request("GET", "/webhook-endpoints", params={"limit": limit}))

    def create(
        self,
        url: str,
        *,
        description: str | None = None,
        event_types: Sequence[str] | None = None,
        enabled: bool = True,
    ) -> Any:
        body = compact(
            {
                "url": url,
                "description": description,
                "event_types": list(event_types) if event_types is not None else None,
                "enabled": enabled,
            }
        )
        return self._run(Request("POST", "/webhook-endpoints", body=body))

    def retrieve(self, endpoint_id: str) -> Any:
        return self._run(Request("GET", f"/webhook-endpoints/{_id(endpoint_id)}"))

    def update(self, endpoint_id: str, **fields: Any) -> Any:
        """Change any of `url`, `description`, `event_types`, `enabled`."""
        return self._run(Request("PATCH", f"/webhook-endpoints/{_id(endpoint_id)}", body=compact(fields)))

    def delete(self, endpoint_id: str) -> None:
        self._run(Request("DELETE", f"/webhook-endpoints/{_id(endpoint_id)}"))

    def rotate_secret(self, endpoint_id: str, *, grace_hours: float | None = None) -> Any:
        """A new secret; the old one keeps signing for `grace_hours` (default: the server's, 24)."""
        body = compact({"grace_hours": grace_hours})
        return self._run(Request("POST", f"/webhook-endpoints/{_id(endpoint_id)}/rotate-secret", body=body))


class Alerts(_Resource):
    def set(self, account_id: str, *, low_balance: Amount | None, credit_type: str | None = None) -> Any:
        """A wallet's low-balance threshold (None: the server's default for the credit type)."""
        body = compact({"credit_type": credit_type})
        body["low_balance"] = _amount(low_balance)
        return self._run(Request("PUT", f"/accounts/{_id(account_id)}/alerts", body=body))


class Payments(_Resource):
    """Money in through Stripe: packs, Checkout, auto-recharge and customer-portal links (docs/payments.md)."""

    def packs(self) -> Any:
        """The credit packs on sale, cheapest first (`data` is a list of packs)."""
        return self._run(Request("GET", "/packs"))

    def checkout(
        self,
        pack: str,
        *,
        success_url: str,
        cancel_url: str,
        account: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Open a Stripe Checkout Session for `pack`: a pending purchase with its `checkout_url`."""
        body = compact({"account": account, "pack": pack, "success_url": success_url, "cancel_url": cancel_url})
        return self._run(
            Request("POST", "/checkout-sessions", body=body, idempotent=True, idempotency_key=idempotency_key)
        )

    def auto_recharge(self, account_id: str) -> Any:
        """The account's auto-recharge settings, per credit type."""
        return self._run(Request("GET", f"/accounts/{_id(account_id)}/auto-recharge"))

    def set_auto_recharge(self, account_id: str, **settings: Any) -> Any:
        """Set one wallet's auto-recharge: pack, threshold, amount or target, monthly_cap, stripe_customer, ..."""
        body = compact({**settings, **{k: _amount(settings.get(k)) for k in ("threshold", "amount", "target")}})
        return self._run(Request("PUT", f"/accounts/{_id(account_id)}/auto-recharge", body=body))

    def portal_link(self, account_id: str) -> Any:
        """A signed, expiring link to the account's customer portal (`url`, `expires_at`)."""
        return self._run(Request("POST", f"/accounts/{_id(account_id)}/portal-sessions"))
