"""Pricing: the single, auditable answer to "what does this cost?".

`price_quote` turns a key (a model id or an action) and a usage into an
amount, and says exactly which price it used. It never guesses:

* the key is normalised (trimmed, lower-cased), then resolved through
  aliases;
* the price comes from, in order: an environment fixed cost
  (CREDIT_COST_<ACTION>, default credit type only), the database catalogue
  (the version in force now), and only if an operator configured one, a
  default price, which never applies to high-value keys;
* a `:free` suffix makes a key free only if the catalogue says that exact
  key is free; otherwise the suffix is stripped, the base price charged and
  the event logged;
* a unit price outside the sanity bounds, or an amount above the quote
  ceiling, is refused (422 pricing_anomaly) and reported;
* a paid key that comes to zero is flagged (`anomaly="zero_cost"`), so the
  charge path records it instead of letting usage go unbilled.

Rounding rule: the exact amount (Decimal, no intermediate rounding) is
    requests x per_request + input_tokens x per_1k_input_tokens / 1000
    + output_tokens x per_1k_output_tokens / 1000 + units x per_unit,
rounded half up to the credit type's scale; if that exact amount is above
zero but rounds to zero, the charge is one quantum (0.01 at scale 2). So a
non-zero usage of a non-zero price never costs zero.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from django.conf import settings
from django.utils import timezone

from config import metrics
from config.money import decimal_text
from pricing.exceptions import InvalidPriceKey, PriceNotConfigured, PricingAnomaly
from pricing.models import KEY_MAX_LENGTH, KEY_PATTERN, UNIT_PRICE_FIELDS, CreditType, Price
from pricing.selectors import catalogue_snapshot, credit_type_get, env_price_get
from pricing.services.anomalies import anomaly_report
from pricing.services.usage import Usage

logger = logging.getLogger(__name__)

FREE_SUFFIX = ":free"
MAX_ALIAS_HOPS = 16


# --- value objects -------------------------------------------------------------


@dataclass(frozen=True)
class UnitPrices:
    per_request: Decimal = Decimal(0)
    per_1k_input_tokens: Decimal = Decimal(0)
    per_1k_output_tokens: Decimal = Decimal(0)
    per_unit: Decimal = Decimal(0)
    unit_name: str = ""

    @classmethod
    def of(cls, price: Price) -> UnitPrices:
        return cls(**{name: getattr(price, name) for name in UNIT_PRICE_FIELDS}, unit_name=price.unit_name)

    def as_json(self) -> dict[str, str]:
        """Decimal strings, never floats, without trailing zeros: stored on ledger entries as the exact prices used."""
        body = {name: decimal_text(getattr(self, name)) for name in UNIT_PRICE_FIELDS}
        body["unit_name"] = self.unit_name
        return body

    @property
    def all_zero(self) -> bool:
        return not any(getattr(self, name) for name in UNIT_PRICE_FIELDS)


@dataclass(frozen=True)
class Quote:
    """What a usage of a key costs, and exactly which price said so."""

    amount: Decimal  # quantised to credit_type's scale
    credit_type: CreditType
    key: str  # as asked
    resolved_key: str  # after normalisation, aliases and `:free` handling
    price_version: Price | None  # None for environment and default prices
    source: str  # "database" | "environment" | "default"
    usage: Usage
    is_free: bool
    unit_prices: UnitPrices
    anomaly: str = ""  # "zero_cost" when a paid key came to zero
    notices: tuple[str, ...] = field(default=())  # "free_suffix_stripped", "default_price"

    @property
    def price_ref(self) -> str:
        """A short string naming the price used: `prv_…`, `env:CREDIT_COST_…` or `default`."""
        if self.price_version is not None:
            return self.price_version.public_id
        if self.source == "environment":
            env = env_price_get(self.resolved_key)
            return f"env:{env.variable}" if env else "env"
        return self.source

    def ledger_fields(self) -> dict[str, Any]:
        """The pricing columns of the ledger entry this quote is charged as."""
        return {
            "price_key": self.key[:KEY_MAX_LENGTH],
            "resolved_key": self.resolved_key,
            "price_version": self.price_version,
            "price_source": self.source,
            "unit_prices": self.unit_prices.as_json(),
            "usage": self.usage.as_dict(),
        }

    def as_json(self) -> dict[str, Any]:
        scale = self.credit_type.quantum
        return {
            "amount": format(self.amount.quantize(scale), "f"),
            "credit_type": self.credit_type.code,
            "key": self.key,
            "resolved_key": self.resolved_key,
            "price_version": self.price_version.public_id if self.price_version else None,
            "version": self.price_version.version if self.price_version else None,
            "source": self.source,
            "is_free": self.is_free,
            "unit_prices": self.unit_prices.as_json(),
            "usage": self.usage.as_dict(),
            "anomaly": self.anomaly or None,
            "notices": list(self.notices),
        }


# --- the rounding rule -----------------------------------------------------------


def amount_exact(prices: UnitPrices, usage: Usage) -> Decimal:
    """The unrounded amount; exact because the context is wide enough for any bounded input."""
    with localcontext() as ctx:
        ctx.prec = 100
        return (
            prices.per_request * usage.requests
            + prices.per_1k_input_tokens * usage.input_tokens / 1000
            + prices.per_1k_output_tokens * usage.output_tokens / 1000
            + prices.per_unit * usage.units
        )


def amount_round(exact: Decimal, scale: int) -> Decimal:
    """Round half up to `scale` places; a positive amount never rounds to zero."""
    quantum = Decimal(1).scaleb(-scale)
    with localcontext() as ctx:
        ctx.prec = 100
        rounded = exact.quantize(quantum, rounding=ROUND_HALF_UP)
    if exact > 0 and rounded == 0:
        return quantum
    return rounded


# --- quoting ---------------------------------------------------------------------


def key_normalise(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidPriceKey(param="key")
    normalised = key.strip().lower()
    if not KEY_PATTERN.match(normalised):
        raise InvalidPriceKey(param="key")
    return normalised


def alias_resolve(key: str, aliases: dict[str, str]) -> str:
    """Follow aliases to a canonical key. A cycle (refused at save) prices nothing."""
    seen = [key]
    while key in aliases:
        key = aliases[key]
        if key in seen or len(seen) > MAX_ALIAS_HOPS:
            logger.error("pricing alias cycle at runtime: %s", " -> ".join([*seen, key]))
            raise PriceNotConfigured("The alias for this key does not resolve; nothing was charged.")
        seen.append(key)
    return key


def is_high_value(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatchcase(candidate, pattern.lower())
        for pattern in settings.PRICING_HIGH_VALUE_PATTERNS
        for candidate in (key, name)
    )


@dataclass(frozen=True)
class _Found:
    source: str
    version: Price | None
    prices: UnitPrices
    is_free: bool


def _find(key: str, credit_type: CreditType, snapshot, now: datetime) -> _Found | None:
    # Environment first: an operator's deployment setting is never silently
    # overridden by a database row (docs/pricing.md: precedence).
    if credit_type.code == settings.DEFAULT_CREDIT_TYPE:
        env = env_price_get(key)
        if env is not None:
            return _Found("environment", None, UnitPrices(per_request=env.per_request), env.per_request == 0)
    version = snapshot.version_at(key, credit_type.pk, now)
    if version is not None:
        return _Found("database", version, UnitPrices.of(version), version.is_free)
    return None


def _check_bounds(prices: UnitPrices, *, key: str, source: str) -> None:
    for name in UNIT_PRICE_FIELDS:
        value = getattr(prices, name)
        low, high = settings.PRICING_BOUNDS[name]
        if value and not (low <= value <= high):
            anomaly_report(
                "pricing_anomaly",
                f"{name} {value} outside [{low}, {high}]",
                key=key,
                source=source,
            )
            metrics.pricing_refusals.labels(code=PricingAnomaly.code).inc()
            raise PricingAnomaly(param="key", key=key)


def price_quote(*, key: str, usage: Usage, credit_type: CreditType | None = None) -> Quote:
    """Price `usage` of `key`, or raise PriceNotConfigured / PricingAnomaly. Writes nothing.

    Runs outside any wallet lock (callers quote first, then lock).
    """
    credit_type = credit_type or credit_type_get()
    asked = key
    normalised = key_normalise(key)
    snapshot = catalogue_snapshot()
    now = timezone.now()
    notices: list[str] = []

    resolved = alias_resolve(normalised, snapshot.aliases)
    found = _find(resolved, credit_type, snapshot, now)
    if found is None and resolved.endswith(FREE_SUFFIX):
        # Only the catalogue makes a key free: `x:free` with no entry of its
        # own is priced as `x`, whatever the suffix claims.
        base = alias_resolve(resolved.removesuffix(FREE_SUFFIX), snapshot.aliases)
        found = _find(base, credit_type, snapshot, now)
        if found is not None:
            if not found.is_free:
                notices.append("free_suffix_stripped")
                metrics.pricing_free_suffix_stripped.inc()
                logger.warning("pricing: %r is not free in the catalogue; charged at the price of %r", asked, base)
            resolved = base
    if found is None:
        found = _default_price(credit_type, normalised, resolved)
        if found is not None:
            notices.append("default_price")
            logger.warning("pricing: no price for %r; the operator default price applies", resolved)
    if found is None:
        metrics.pricing_refusals.labels(code=PriceNotConfigured.code).inc()
        if is_high_value(resolved) or is_high_value(normalised):
            anomaly_report(
                "price_not_configured", "missing price for a high-value key", key=asked, resolved_key=resolved
            )
        else:
            logger.warning("pricing: no price configured for %r (resolved %r)", asked, resolved)
        raise PriceNotConfigured(param="key", key=asked[:KEY_MAX_LENGTH], credit_type=credit_type.code)

    if not found.is_free:
        _check_bounds(found.prices, key=resolved, source=found.source)
    exact = amount_exact(found.prices, usage)
    amount = amount_round(exact, credit_type.scale)
    if amount > settings.PRICING_MAX_QUOTE:
        anomaly_report("pricing_anomaly", f"quote {amount} above the ceiling", key=resolved, usage=usage.as_dict())
        metrics.pricing_refusals.labels(code=PricingAnomaly.code).inc()
        raise PricingAnomaly(
            "This usage would cost more than the configured per-charge ceiling; nothing was charged.",
            param="usage",
            key=asked[:KEY_MAX_LENGTH],
        )
    anomaly = "zero_cost" if amount == 0 and not found.is_free else ""
    metrics.pricing_quotes.labels(source=found.source).inc()
    return Quote(
        amount=amount,
        credit_type=credit_type,
        key=asked,
        resolved_key=resolved,
        price_version=found.version,
        source=found.source,
        usage=usage,
        is_free=found.is_free,
        unit_prices=found.prices,
        anomaly=anomaly,
        notices=tuple(notices),
    )


def _default_price(credit_type: CreditType, *keys: str) -> _Found | None:
    default = settings.PRICING_DEFAULT_PRICE
    if not default or credit_type.code != settings.DEFAULT_CREDIT_TYPE:
        return None
    if any(is_high_value(k) for k in keys):
        return None
    return _Found("default", None, UnitPrices(**default), False)
