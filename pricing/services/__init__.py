"""Pricing services, one module per subject; callers import from `pricing.services`.

* `usage`: `Usage`, the counts a priced call used, and their bounds;
* `quotes`: `price_quote`, the single answer to "what does this cost?", and
  its rounding rule;
* `catalogue`: writes of price versions and aliases, and their validation;
* `sheets`: `prices_import`, a price sheet applied all-or-nothing;
* `anomalies`: reporting pricing anomalies, recording zero-cost charges, and
  marking them resolved.
"""

from pricing.services.anomalies import anomalies_resolve, anomaly_report, zero_cost_charge_record
from pricing.services.catalogue import (
    alias_delete,
    alias_set,
    alias_validate,
    price_create,
    price_same,
    price_validate,
)
from pricing.services.quotes import (
    FREE_SUFFIX,
    MAX_ALIAS_HOPS,
    Quote,
    UnitPrices,
    alias_resolve,
    amount_exact,
    amount_round,
    is_high_value,
    key_normalise,
    price_quote,
)
from pricing.services.sheets import ImportReport, prices_import
from pricing.services.usage import USAGE_FIELDS, Usage, usage_limits, usage_parse

__all__ = [
    "FREE_SUFFIX",
    "MAX_ALIAS_HOPS",
    "USAGE_FIELDS",
    "ImportReport",
    "Quote",
    "UnitPrices",
    "Usage",
    "alias_delete",
    "alias_resolve",
    "alias_set",
    "alias_validate",
    "amount_exact",
    "amount_round",
    "anomalies_resolve",
    "anomaly_report",
    "is_high_value",
    "key_normalise",
    "price_create",
    "price_quote",
    "price_same",
    "price_validate",
    "prices_import",
    "usage_limits",
    "usage_parse",
    "zero_cost_charge_record",
]
