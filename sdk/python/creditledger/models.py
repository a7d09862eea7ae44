"""What the API answers, as objects: dicts with attribute access, money as Decimal.

Each object keeps every field the server sent (a field added by a newer
server is readable as ``obj["field"]`` or ``obj.field``); the annotations
below are the fields this version knows. Amount fields arrive as decimal
strings and are parsed into ``Decimal``, never ``float``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# Field names whose string values are amounts (at any depth of an answer).
MONEY_FIELDS = frozenset(
    {
        "amount",
        "balance",
        "balance_after",
        "held",
        "available",
        "captured_amount",
        "requested_amount",
        "charge_refundable",
        "total_amount",
        "refundable",
        "requested",
        "required",
        "remaining",
        "per_request",
        "per_1k_input_tokens",
        "per_1k_output_tokens",
        "per_unit",
        "opening_balance",
        "closing_balance",
    }
)


def _to_decimal(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return Decimal(value)
        except (InvalidOperation, ValueError):
            return value
    return value


class APIObject(dict):
    """A JSON object from the API. ``obj.field`` reads ``obj["field"]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"

    @property
    def response_headers(self) -> dict[str, str]:
        """The HTTP headers of the answer this object came from (empty for nested objects)."""
        return self.__dict__.get("_headers", {})

    @property
    def replayed(self) -> bool:
        """True when the server replayed a stored answer for this Idempotency-Key (nothing moved twice)."""
        return self.response_headers.get("idempotent-replayed") == "true"

    @classmethod
    def parse(cls, data: Any) -> Any:
        """Parse a decoded JSON value: nested objects become ``APIObject``s, amount fields Decimals."""
        if not isinstance(data, dict):
            return data
        out = cls()
        for key, value in data.items():
            if key in _NESTED and isinstance(value, dict):
                out[key] = _NESTED[key].parse(value)
            elif key in _NESTED_LISTS and isinstance(value, list):
                out[key] = [_NESTED_LISTS[key].parse(v) for v in value]
            elif isinstance(value, dict):
                out[key] = APIObject.parse(value)
            elif isinstance(value, list):
                out[key] = [APIObject.parse(v) for v in value]
            elif key in MONEY_FIELDS:
                out[key] = _to_decimal(value)
            else:
                out[key] = value
        return out


class Account(APIObject):
    id: str
    object: str
    external_id: str
    name: str
    email: str
    status: str
    created_at: str
    updated_at: str


class Pricing(APIObject):
    key: str
    resolved_key: str
    price_version: str | None
    version: int | None
    source: str
    unit_prices: dict[str, Any]
    usage: dict[str, int]


class LedgerEntry(APIObject):
    """A ledger entry (``txn_…``): a charge's ``amount`` is negative."""

    id: str
    object: str
    account: str
    credit_type: str
    kind: str
    amount: Decimal
    balance_after: Decimal
    related_entry: str | None
    task_id: str
    route: str
    description: str
    metadata: dict[str, Any]
    idempotency_key: str
    created_at: str
    pricing: Pricing | None


class ZeroCharge(APIObject):
    """A priced charge that came to zero: no ledger entry was written (``object == "zero_charge"``)."""

    object: str
    id: str | None
    amount: Decimal
    credit_type: str
    key: str
    resolved_key: str
    anomaly: str | None


class ExpiringCredits(APIObject):
    amount: Decimal
    expires_at: str


class WalletBalance(APIObject):
    credit_type: str
    balance: Decimal
    held: Decimal
    available: Decimal
    expiring: list[ExpiringCredits]


class Balance(APIObject):
    """For display only: served from a cache; ``source`` says ``cache`` or ``database``."""

    account: str
    balances: list[WalletBalance]

    @property
    def source(self) -> str | None:
        """``cache`` or ``database`` (the Balance-Source header)."""
        return self.response_headers.get("balance-source")

    def for_credit_type(self, credit_type: str = "credits") -> WalletBalance | None:
        return next((b for b in self.balances if b.credit_type == credit_type), None)


class Hold(APIObject):
    id: str
    object: str
    account: str
    credit_type: str
    status: str
    amount: Decimal
    captured_amount: Decimal
    requested_amount: Decimal | None
    on_expiry: str
    expires_at: str
    price_key: str
    estimated_usage: dict[str, int] | None
    capture_usage: dict[str, int] | None
    price_version: str
    task_id: str
    route: str
    metadata: dict[str, Any]
    release_reason: str
    capture_entry: str | None
    created_at: str
    resolved_at: str | None


class Refund(APIObject):
    """A refund (``rfd_…``); when just created it also has ``charge_refundable``."""

    id: str
    object: str
    account: str
    credit_type: str
    amount: Decimal
    reason: str
    api_route: str
    error_message: str
    charge: str
    refund_entry: LedgerEntry
    metadata: dict[str, Any]
    actor: str
    created_at: str
    charge_refundable: Decimal


class RefundStats(APIObject):
    count: int
    by_credit_type: list[APIObject]
    by_reason: list[APIObject]
    by_route: list[APIObject]


class Quote(APIObject):
    object: str
    amount: Decimal
    credit_type: str
    key: str
    resolved_key: str
    price_version: str | None
    version: int | None
    source: str
    is_free: bool
    unit_prices: dict[str, Any]
    usage: dict[str, int]
    anomaly: str | None
    notices: list[str]


class Price(APIObject):
    key: str
    credit_type: str
    source: str
    price_version: str | None
    version: int | None
    effective_from: str | None
    is_free: bool
    per_request: Decimal
    per_1k_input_tokens: Decimal
    per_1k_output_tokens: Decimal
    per_unit: Decimal
    unit_name: str
    env_variable: str | None
    shadowed_by: str | None


class PriceList(APIObject):
    object: str
    data: list[Price]
    aliases: dict[str, str]


class Statement(APIObject):
    """An account's statement for a period: ``opening_balance`` + the entries' amounts = ``closing_balance``."""

    object: str
    account: str
    credit_type: str
    period_from: str | None
    period_to: str | None
    opening_balance: Decimal
    closing_balance: Decimal
    entry_count: int
    chain_verified: bool
    entries: list[LedgerEntry]


_NESTED: dict[str, type[APIObject]] = {"pricing": Pricing, "refund_entry": LedgerEntry}
_NESTED_LISTS: dict[str, type[APIObject]] = {
    "balances": WalletBalance,
    "expiring": ExpiringCredits,
    "entries": LedgerEntry,
}


def charge_result(data: dict) -> LedgerEntry | ZeroCharge:
    if isinstance(data, dict) and data.get("object") == "zero_charge":
        return ZeroCharge.parse(data)
    return LedgerEntry.parse(data)


class ChargeBatchItem(APIObject):
    """One item of a batch's answer, in request order: what POST /charges would have answered for it.

    ``status`` and ``body`` are that answer; ``result`` is the charge
    (`LedgerEntry` or `ZeroCharge`) when it succeeded, ``error`` the typed
    exception (not raised) when it did not. ``replayed``: the item's key had
    already been answered, and this is that first answer.
    """

    object: str
    idempotency_key: str
    status: int
    body: dict[str, Any]

    @property
    def replayed(self) -> bool:  # the item's own flag, not the batch's header
        return bool(self.get("replayed"))

    @property
    def ok(self) -> bool:
        return 200 <= self["status"] < 300

    @property
    def result(self) -> LedgerEntry | ZeroCharge | None:
        return charge_result(self["body"]) if self.ok else None

    @property
    def error(self) -> Any:
        """The item's error as the typed exception a single charge would raise (None when it succeeded)."""
        if self.ok:
            return None
        from creditledger.errors import error_from_response

        return error_from_response(self["status"], self["body"])


class ChargeBatch(APIObject):
    """The answer to ``charges.batch``: ``data`` holds one `ChargeBatchItem` per item, in request order."""

    object: str
    data: list[ChargeBatchItem]


def charge_batch(data: dict) -> ChargeBatch:
    parsed = ChargeBatch.parse(data)
    parsed["data"] = [ChargeBatchItem.parse(item) for item in data.get("data", [])]
    return parsed


def price_list(data: dict) -> PriceList:
    parsed = PriceList.parse(data)
    parsed["data"] = [Price.parse(row) for row in data.get("data", [])]
    return parsed
