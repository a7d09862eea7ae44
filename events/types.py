"""The event types: adding one is one line here (and a call to `event_record` where it happens).

Each maps to a short description (the admin and the OpenAPI schema show it).
`OFF_BY_DEFAULT` types are recorded, but a webhook endpoint receives them only
if it names them explicitly (an endpoint with no list of types gets the rest).
"""

from __future__ import annotations

EVENT_TYPES: dict[str, str] = {
    "grant.created": "Credits were granted (data: the ledger entry).",
    "charge.created": "A charge took credits (data: the ledger entry).",
    "charge.declined": "A charge was declined for insufficient credits (data: account, credit type, amounts).",
    "hold.created": "Credits were reserved by a hold (data: the hold).",
    "hold.captured": "A hold was captured (data: the hold).",
    "hold.released": "A hold was released (data: the hold).",
    "hold.expired": "A hold expired and was released or captured per its on_expiry (data: the hold).",
    "refund.created": "A charge was refunded (data: the refund).",
    "balance.low": "A wallet's available balance fell to or below its low-balance threshold.",
    "balance.depleted": "A wallet's available balance reached zero.",
    "lot.expired": "Unused credits of an expiring grant expired (data: the expiry ledger entry).",
    "subscription.updated": "A subscription changed (data: the subscription).",
    "reconciliation.drift": "The reconciliation found a balance that does not match its ledger.",
    "pricing.anomaly": "A pricing anomaly was recorded (data: the anomaly).",
    "approval.requested": "A staff grant, adjustment or refund over its threshold awaits approval (data: the request).",
    "auto_recharge.failed": "Auto-recharge turned itself off after failed payments in a row (data: wallet and reason).",
}

OFF_BY_DEFAULT: frozenset[str] = frozenset({"charge.declined"})

# The types a ledger entry is (the entry's `event_type` column, events.models.EntryEvent); every other type is
# a stored `Event`.
ENTRY_EVENT_TYPES: frozenset[str] = frozenset({"grant.created", "charge.created", "lot.expired"})

# One enum in the OpenAPI schema wherever a type is named (settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
EVENT_TYPE_CHOICES: list[tuple[str, str]] = [(name, name) for name in sorted(EVENT_TYPES)]
