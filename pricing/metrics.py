"""Prometheus counters for pricing, on the default registry (exposed at /metrics).

Labels are bounded sets (source, code, kind); never a key, which is unbounded.
"""

from prometheus_client import Counter

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
