"""Writes to the credit ledger, by subject; every balance change goes through `billing.core.posting`.

Callers import from here (`from billing.services import charge_create`):
the subject modules are an implementation detail.
"""

from billing.core import Actor
from billing.services.amounts import amount_validate, capture_amount_validate, signed_amount_validate
from billing.services.batches import MAX_BATCH_ITEMS, BatchCharge, BatchOutcome, charges_batch_apply
from billing.services.charges import ZeroCharge, adjustment_create, charge_create, zero_cost_settle
from billing.services.holds import (
    hold_capture,
    hold_create,
    hold_expire,
    hold_expires_at,
    hold_release,
    holds_expire_due,
)
from billing.services.limits import daily_limit_day, daily_limit_get, daily_limit_timezone, daily_usage_get
from billing.services.lots import (
    LOT_PRIORITY_MAX,
    LOT_PRIORITY_MIN,
    grant_create,
    grant_terms_validate,
    grants_expire_due,
    lot_expire,
)

__all__ = [
    "LOT_PRIORITY_MAX",
    "LOT_PRIORITY_MIN",
    "MAX_BATCH_ITEMS",
    "Actor",
    "BatchCharge",
    "BatchOutcome",
    "ZeroCharge",
    "adjustment_create",
    "amount_validate",
    "capture_amount_validate",
    "charge_create",
    "charges_batch_apply",
    "daily_limit_day",
    "daily_limit_get",
    "daily_limit_timezone",
    "daily_usage_get",
    "grant_create",
    "grant_terms_validate",
    "grants_expire_due",
    "hold_capture",
    "hold_create",
    "hold_expire",
    "hold_expires_at",
    "hold_release",
    "holds_expire_due",
    "lot_expire",
    "signed_amount_validate",
    "zero_cost_settle",
]
