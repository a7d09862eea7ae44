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

Writes (`price_create`, `alias_set`, `alias_delete`, `prices_import`) run in a
transaction that first locks the catalogue revision row, so catalogue
changes are serialised and each one changes the revision stamp that every
process's cache checks.
"""

from __future__ import annotations

import fnmatch
import logging
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

import sentry_sdk
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config import metrics
from pricing.exceptions import InvalidPriceKey, InvalidUsage, PriceNotConfigured, PricingAnomaly
from pricing.models import (
    KEY_MAX_LENGTH,
    KEY_PATTERN,
    UNIT_PRICE_FIELDS,
    CatalogueRevision,
    CreditType,
    ModelAlias,
    Price,
)
from pricing.models import PricingAnomaly as PricingAnomalyRecord
from pricing.selectors import catalogue_snapshot, credit_type_get, env_price_get

logger = logging.getLogger(__name__)

FREE_SUFFIX = ":free"
MAX_ALIAS_HOPS = 16
USAGE_FIELDS = ("input_tokens", "output_tokens", "units", "requests")


# --- value objects -------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What was used: token counts, units (images, seconds, pages) and requests."""

    input_tokens: int = 0
    output_tokens: int = 0
    units: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        limits = usage_limits()
        for name in USAGE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidUsage(f"usage.{name} must be an integer.", param=f"usage.{name}")
            if value < 0:
                raise InvalidUsage(f"usage.{name} may not be negative.", param=f"usage.{name}")
            if value > limits[name]:
                raise InvalidUsage(f"usage.{name} may be at most {limits[name]}.", param=f"usage.{name}")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def is_zero(self) -> bool:
        return not any(self.as_dict().values())


def usage_limits() -> dict[str, int]:
    return {
        "input_tokens": settings.PRICING_MAX_TOKENS,
        "output_tokens": settings.PRICING_MAX_TOKENS,
        "units": settings.PRICING_MAX_UNITS,
        "requests": settings.PRICING_MAX_REQUESTS,
    }


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
        """Decimal strings, never floats: stored on ledger entries as the exact prices used."""
        body = {name: format(getattr(self, name), "f") for name in UNIT_PRICE_FIELDS}
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
    # overridden by a database row (README: precedence).
    if credit_type.code == settings.DEFAULT_CREDIT_TYPE:
        env = env_price_get(key)
        if env is not None:
            return _Found("environment", None, UnitPrices(per_request=env.per_request), env.per_request == 0)
    version = snapshot.version_at(key, credit_type.pk, now)
    if version is not None:
        return _Found("database", version, UnitPrices.of(version), version.is_free)
    return None


def _report(kind: str, message: str, **context: Any) -> None:
    """Log, count and send to Sentry. Callers are outside any row lock.

    Refusals are reported at once rather than on commit: the transaction
    they abort rolls back, and an on_commit hook would never run. The Sentry
    SDK only queues the event here; its transport sends from its own thread.
    """
    logger.warning("pricing %s: %s %s", kind, message, context)
    metrics.pricing_anomalies.labels(kind=kind).inc()
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("pricing_anomaly", kind)
        scope.set_context("pricing", {k: str(v) for k, v in context.items()})
        sentry_sdk.capture_message(f"pricing {kind}: {message}", level="warning")


def _check_bounds(prices: UnitPrices, *, key: str, source: str) -> None:
    for name in UNIT_PRICE_FIELDS:
        value = getattr(prices, name)
        low, high = settings.PRICING_BOUNDS[name]
        if value and not (low <= value <= high):
            _report(
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
            _report("price_not_configured", "missing price for a high-value key", key=asked, resolved_key=resolved)
        else:
            logger.warning("pricing: no price configured for %r (resolved %r)", asked, resolved)
        raise PriceNotConfigured(param="key", key=asked[:KEY_MAX_LENGTH], credit_type=credit_type.code)

    if not found.is_free:
        _check_bounds(found.prices, key=resolved, source=found.source)
    exact = amount_exact(found.prices, usage)
    amount = amount_round(exact, credit_type.scale)
    if amount > settings.PRICING_MAX_QUOTE:
        _report("pricing_anomaly", f"quote {amount} above the ceiling", key=resolved, usage=usage.as_dict())
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


# --- validation shared by the model, the admin and the importer -------------------


def price_validate(price: Price) -> None:
    """Raise django ValidationError if `price` may not be saved as a new version."""
    errors: dict[str, list[str]] = {}
    if price.key and price.key != price.key.strip().lower():
        errors.setdefault("key", []).append("Keys are lower-case without surrounding spaces.")
    for name in UNIT_PRICE_FIELDS:
        value = getattr(price, name)
        if value is None:
            continue
        if value < 0:
            errors.setdefault(name, []).append("A price may not be negative.")
            continue
        low, high = settings.PRICING_BOUNDS[name]
        if value and not (low <= value <= high):
            errors.setdefault(name, []).append(
                f"{value} is outside the sanity bounds [{low}, {high}] (CREDITLEDGER_PRICING_*)."
            )
    prices = [getattr(price, name) or Decimal(0) for name in UNIT_PRICE_FIELDS]
    if price.is_free and any(prices):
        errors.setdefault("is_free", []).append("A free price has every unit price at zero.")
    if not price.is_free and not any(prices):
        errors.setdefault("is_free", []).append(
            "A price with every unit price at zero must be marked free; zero is never assumed to mean free."
        )
    if (price.per_unit or 0) and not price.unit_name:
        errors.setdefault("unit_name", []).append("Name the unit (image, second, page) priced per unit.")
    if (
        price.key
        and price.credit_type_id
        and price.credit_type.code == settings.DEFAULT_CREDIT_TYPE
        and env_price_get(price.key) is not None
    ):
        errors.setdefault("key", []).append(
            f"{price.key!r} is priced by {env_price_get(price.key).variable} in the environment, which takes "
            "precedence; change it there."
        )
    if price.key and ModelAlias.objects.filter(alias=price.key).exists():
        errors.setdefault("key", []).append(f"{price.key!r} is an alias; price its target instead.")
    if price.credit_type_id and price.pk is None and price.effective_from:
        if price.effective_from < timezone.now() - timedelta(minutes=5):
            errors.setdefault("effective_from", []).append("A new version cannot take effect in the past.")
    if errors:
        raise ValidationError(errors)


def _is_priced(key: str) -> bool:
    return env_price_get(key) is not None or Price.objects.filter(key=key).exists()


def alias_validate(alias: ModelAlias) -> None:
    """No self-alias, no cycle, and the chain must end at a priced key."""
    if not alias.alias or not alias.target:
        return  # field validation reports the blank
    if alias.alias == alias.target:
        raise ValidationError({"target": "An alias cannot point at itself."})
    if Price.objects.filter(key=alias.alias).exists():
        raise ValidationError({"alias": f"{alias.alias!r} has prices of its own; an alias would hide them."})
    chain = dict(ModelAlias.objects.exclude(pk=alias.pk).values_list("alias", "target"))
    chain[alias.alias] = alias.target
    seen = [alias.alias]
    key = alias.alias
    while key in chain:
        key = chain[key]
        if key in seen:
            raise ValidationError({"target": f"Alias cycle: {' -> '.join([*seen, key])}."})
        seen.append(key)
    if not _is_priced(key):
        raise ValidationError({"target": f"{alias.target!r} leads to {key!r}, which has no price."})


# --- writes --------------------------------------------------------------------------


def _catalogue_changed() -> None:
    """Lock the revision row and give it a new stamp; call first in a catalogue write.

    The row lock serialises catalogue writes (so two alias saves cannot
    together make a cycle each alone would not), and the new stamp commits
    with the change: the next look-up in every process reloads.
    """
    revision, _ = CatalogueRevision.objects.select_for_update().get_or_create(pk=1)
    revision.stamp = uuid.uuid4().hex
    revision.save(update_fields=["stamp", "updated_at"])


def price_create(
    *,
    key: str,
    credit_type: CreditType,
    per_request: Decimal | str = Decimal(0),
    per_1k_input_tokens: Decimal | str = Decimal(0),
    per_1k_output_tokens: Decimal | str = Decimal(0),
    per_unit: Decimal | str = Decimal(0),
    unit_name: str = "",
    is_free: bool = False,
    effective_from: datetime | None = None,
    note: str = "",
    user: Any | None = None,
) -> Price:
    """Add a new version of the price of `key` (the first version if there is none)."""
    with transaction.atomic():
        _catalogue_changed()
        latest = Price.objects.filter(key=key, credit_type=credit_type).order_by("-version").first()
        price = Price(
            key=key,
            credit_type=credit_type,
            version=(latest.version + 1) if latest else 1,
            per_request=Decimal(per_request),
            per_1k_input_tokens=Decimal(per_1k_input_tokens),
            per_1k_output_tokens=Decimal(per_1k_output_tokens),
            per_unit=Decimal(per_unit),
            unit_name=unit_name,
            is_free=is_free,
            effective_from=effective_from or timezone.now(),
            note=note,
            created_by=user,
        )
        price.full_clean()
        price.save(force_insert=True)
    logger.info(
        "pricing: %s v%s (%s) per_request=%s per_1k_in=%s per_1k_out=%s per_unit=%s free=%s",
        key,
        price.version,
        credit_type.code,
        *(format(getattr(price, n), "f") for n in UNIT_PRICE_FIELDS),
        is_free,
    )
    return price


def price_same(price: Price, **values: Any) -> bool:
    """Whether `values` would make a version identical to `price` (import skips those)."""
    return (
        all(Decimal(values.get(name, 0)) == getattr(price, name) for name in UNIT_PRICE_FIELDS)
        and values.get("unit_name", "") == price.unit_name
        and bool(values.get("is_free", False)) == price.is_free
    )


def alias_set(*, alias: str, target: str, note: str = "") -> ModelAlias:
    """Create or repoint an alias; refused if it would make a cycle or lead to no price."""
    with transaction.atomic():
        _catalogue_changed()
        obj = ModelAlias.objects.filter(alias=alias).first() or ModelAlias(alias=alias)
        obj.target = target
        obj.note = note
        obj.full_clean()
        obj.save()
    return obj


def alias_delete(*, alias: ModelAlias) -> None:
    with transaction.atomic():
        _catalogue_changed()
        alias.delete()


# --- zero-cost charges ------------------------------------------------------------------


def zero_cost_charge_record(
    *,
    quote: Quote,
    account: Any,
    task_id: str = "",
    route: str = "",
    idempotency_key: str = "",
) -> PricingAnomalyRecord:
    """Record a charge of a paid key that came to zero: it cannot be a ledger entry
    (entries are never zero), so it is kept here, counted and sent to Sentry."""
    record = PricingAnomalyRecord.objects.create(
        kind=PricingAnomalyRecord.Kind.ZERO_COST,
        account=account,
        credit_type=quote.credit_type,
        price_key=quote.key[:KEY_MAX_LENGTH],
        resolved_key=quote.resolved_key,
        price_version=quote.price_version,
        price_source=quote.source,
        usage=quote.usage.as_dict(),
        task_id=task_id,
        route=route,
        idempotency_key=idempotency_key,
    )
    context = {
        "anomaly": record.public_id,
        "key": quote.resolved_key,
        "price": quote.price_ref,
        "usage": quote.usage.as_dict(),
    }
    transaction.on_commit(lambda: _report("zero_cost", "a paid key settled at zero", **context))
    return record


# --- import -------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: list[Price] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    aliases: list[ModelAlias] = field(default_factory=list)


class _DryRunRollback(Exception):
    pass


def prices_import(
    *,
    prices: Iterable[dict[str, Any]],
    aliases: Iterable[dict[str, Any]] = (),
    dry_run: bool = False,
    user: Any | None = None,
) -> ImportReport:
    """Apply a price sheet all-or-nothing; rows equal to the current version are skipped.

    Each row is validated exactly as the admin validates a price (bounds
    included). Any invalid row raises ValidationError naming the row, and
    nothing is written. With dry_run the whole import runs and is rolled back.
    """
    report = ImportReport()
    try:
        with transaction.atomic():
            errors: list[str] = []
            for index, row in enumerate(prices, start=1):
                try:
                    _import_price_row(row, report, user)
                except (ValidationError, ValueError, ArithmeticError, KeyError) as exc:
                    errors.append(f"price row {index} ({row.get('key', '?')}): {_describe(exc)}")
            for index, row in enumerate(aliases, start=1):
                try:
                    report.aliases.append(
                        alias_set(alias=row["alias"], target=row["target"], note=row.get("note", "") or "")
                    )
                except (ValidationError, KeyError, TypeError) as exc:
                    errors.append(f"alias row {index} ({row.get('alias', '?')}): {_describe(exc)}")
            if errors:
                raise ValidationError(errors)
            if dry_run:
                raise _DryRunRollback()
    except _DryRunRollback:
        pass
    return report


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in exc.message_dict.items())
        return " ".join(exc.messages)
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    return str(exc) or type(exc).__name__


def _import_price_row(row: dict[str, Any], report: ImportReport, user: Any | None) -> None:
    key = row["key"]
    if not isinstance(key, str) or key != key.strip().lower():
        raise ValidationError({"key": "Keys are lower-case without surrounding spaces."})
    code = row.get("credit_type") or settings.DEFAULT_CREDIT_TYPE
    credit_type = CreditType.objects.filter(code=code).first()
    if credit_type is None:
        raise ValidationError({"credit_type": f"No credit type {code!r}."})
    values: dict[str, Any] = {}
    for name in UNIT_PRICE_FIELDS:
        raw = row.get(name, "0")
        if raw in (None, ""):
            raw = "0"
        if isinstance(raw, float | bool):
            raise ValidationError({name: "Prices are decimal strings, not floats."})
        values[name] = Decimal(str(raw))
        if not values[name].is_finite():
            raise ValidationError({name: "Prices are finite decimals."})
    values["unit_name"] = row.get("unit_name") or ""
    is_free = row.get("is_free", False)
    if isinstance(is_free, str):
        if is_free.strip().lower() not in ("", "0", "1", "true", "false", "yes", "no"):
            raise ValidationError({"is_free": f"Not a boolean: {is_free!r}."})
        is_free = is_free.strip().lower() in ("1", "true", "yes")
    values["is_free"] = bool(is_free)
    effective_from = row.get("effective_from") or None
    if isinstance(effective_from, str):
        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(effective_from)
        if parsed is None:
            raise ValidationError({"effective_from": f"Not an ISO 8601 date-time: {effective_from!r}."})
        effective_from = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
    current = (
        Price.objects.filter(key=key, credit_type=credit_type, effective_from__lte=timezone.now())
        .order_by("-effective_from", "-version")
        .first()
    )
    if current is not None and effective_from is None and price_same(current, **values):
        report.unchanged.append(key)
        return
    report.created.append(
        price_create(
            key=key,
            credit_type=credit_type,
            effective_from=effective_from,
            note=row.get("note") or "imported",
            user=user,
            **values,
        )
    )
