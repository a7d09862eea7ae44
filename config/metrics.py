"""Prometheus metrics, exposed at /metrics: the one home for every metric.

Every app counts here (config is the lowest layer, so any module may import
it); nothing else defines a metric. Labels are bounded sets, never a key or
an account, which are unbounded.

Ledger counters are incremented after commit (see `billing.core.Posting`,
after any wallet change) so a rolled-back charge is never counted. Amounts
are exported as whole numbers of the credit type's smallest unit (0.01
credits at scale 2), exact integers rather than floats; metrics are for
dashboards and alerts, never for money: the ledger is the record.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import Counter, Gauge, Histogram

LEDGER_ENTRIES = Counter(
    "creditledger_ledger_entries_total", "Committed ledger entries by kind.", ["kind", "credit_type"]
)
CHARGES = Counter("creditledger_charges_total", "Committed charges.", ["credit_type"])
CHARGE_AMOUNT = Counter(
    "creditledger_charged_minor_units_total",
    "Credits charged, in the credit type's smallest unit (0.01 at scale 2).",
    ["credit_type"],
)
REFUNDS = Counter("creditledger_refunds_total", "Committed refunds.", ["credit_type"])
REFUND_AMOUNT = Counter(
    "creditledger_refunded_minor_units_total",
    "Credits refunded, in the credit type's smallest unit (0.01 at scale 2).",
    ["credit_type"],
)
GRANTS = Counter("creditledger_grants_total", "Committed grants.", ["credit_type"])
HOLDS = Counter("creditledger_holds_total", "Hold lifecycle events.", ["event"])  # created/captured/released/expired
INSUFFICIENT_CREDITS = Counter(
    "creditledger_insufficient_credits_total", "Charges and holds refused for insufficient credits."
)
IDEMPOTENT_REPLAYS = Counter(
    "creditledger_idempotent_replays_total", "Requests answered from a stored idempotent response.", ["endpoint"]
)
BALANCE_CACHE = Counter(
    "creditledger_balance_cache_total", "Display-cache lookups for GET balance.", ["result"]
)  # hit / miss / bypass / error / invalidate_error
OUTBOX_DISPATCH = Counter(
    "creditledger_outbox_dispatch_total", "Outbox dispatch attempts.", ["result"]
)  # dispatched / retry / failed
DEPENDENCY_UP = Gauge(
    "creditledger_dependency_up",
    "1 if the dependency answered the last /healthz check.",
    ["dependency"],
    multiprocess_mode="livemostrecent",  # under PROMETHEUS_MULTIPROC_DIR: the latest check of any live worker
)
REQUEST_LATENCY = Histogram(
    "creditledger_http_request_duration_seconds",
    "HTTP request latency by route.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def minor_units(amount: Decimal, scale: int) -> int:
    """An amount as a whole number of its credit type's smallest unit: exact, never a float."""
    return int(abs(amount).scaleb(scale))


def ledger_entry_committed(*, kind: str, credit_type: str, amount: Decimal, scale: int) -> None:
    """Count one committed ledger entry (called from an on_commit callback)."""
    LEDGER_ENTRIES.labels(kind=kind, credit_type=credit_type).inc()
    if kind == "charge":
        CHARGES.labels(credit_type=credit_type).inc()
        CHARGE_AMOUNT.labels(credit_type=credit_type).inc(minor_units(amount, scale))
    elif kind == "refund":
        REFUNDS.labels(credit_type=credit_type).inc()
        REFUND_AMOUNT.labels(credit_type=credit_type).inc(minor_units(amount, scale))
    elif kind == "grant":
        GRANTS.labels(credit_type=credit_type).inc()


# --- pricing ------------------------------------------------------------------

pricing_quotes = Counter("creditledger_pricing_quotes_total", "Quotes computed, by price source.", ["source"])
pricing_refusals = Counter(
    "creditledger_pricing_refusals_total", "Quotes refused (price_not_configured, pricing_anomaly).", ["code"]
)
pricing_anomalies = Counter(
    "creditledger_pricing_anomalies_total",
    "Pricing anomalies reported (zero_cost, pricing_anomaly, price_not_configured for high-value keys).",
    ["kind"],
)
pricing_free_suffix_stripped = Counter(
    "creditledger_pricing_free_suffix_stripped_total", "Keys whose `:free` suffix was stripped and charged."
)
pricing_cache_reloads = Counter(
    "creditledger_pricing_cache_reloads_total", "Times a process reloaded the price catalogue."
)
