"""Reads of the price catalogue, with the hot-path cache.

The cache is one immutable snapshot of the catalogue per process: the
current version of every (key, credit type), any versions scheduled for
later, and the aliases. It is swapped whole under a lock, never mutated, so
a reader can never see half an update (the racy-cache failure of the LLM
gateway post-mortem).

Freshness: every look-up first reads the one-row `CatalogueRevision` stamp
(a primary-key read). Every catalogue write changes that stamp in its own
transaction, so the first look-up after the commit, in any process, sees a
different stamp and reloads: a price change reaches every worker by its next
charge, not after the TTL. The TTL only bounds how long an idle snapshot is
trusted. The stamp is read *before* the prices, so a snapshot is never older
than the stamp it is filed under (at worst newer, which costs one extra
reload).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from config import metrics
from pricing.exceptions import CreditTypeNotFound
from pricing.models import CatalogueRevision, CreditType, ModelAlias, Price

_CREDIT_TYPE_TTL_S = 30.0
_credit_types: dict[str, tuple[float, CreditType]] = {}
_credit_types_lock = threading.Lock()


def credit_type_get(code: str | None = None) -> CreditType:
    """The credit type with this code (default: DEFAULT_CREDIT_TYPE).

    Cached in-process for a few seconds: credit types are created rarely and
    their scale never changes once used, so a short TTL is safe and saves a
    query on every charge.
    """
    code = code or settings.DEFAULT_CREDIT_TYPE
    if not isinstance(code, str) or len(code) > 32:
        raise CreditTypeNotFound()
    now = time.monotonic()
    with _credit_types_lock:
        cached = _credit_types.get(code)
    if cached and now - cached[0] < _CREDIT_TYPE_TTL_S:
        return cached[1]
    credit_type = CreditType.objects.filter(code=code).first()
    if credit_type is None:
        raise CreditTypeNotFound(f"No credit type {code!r}.")
    with _credit_types_lock:
        _credit_types[code] = (now, credit_type)
    return credit_type


def credit_type_cache_clear() -> None:
    with _credit_types_lock:
        _credit_types.clear()


@dataclass(frozen=True)
class Snapshot:
    stamp: str
    loaded_at: float  # time.monotonic()
    # (key, credit_type_id) -> versions, newest effective_from first.
    prices: dict[tuple[str, int], tuple[Price, ...]]
    aliases: dict[str, str]

    def version_at(self, key: str, credit_type_id: int, at: datetime) -> Price | None:
        for version in self.prices.get((key, credit_type_id), ()):
            if version.effective_from <= at:
                return version
        return None


_snapshot: Snapshot | None = None
_snapshot_lock = threading.Lock()
_stats = {"reloads": 0}


def catalogue_stamp() -> str:
    return CatalogueRevision.objects.filter(pk=1).values_list("stamp", flat=True).first() or ""


def _load(stamp: str) -> Snapshot:
    now = timezone.now()
    latest_past = (
        Price.objects.filter(key=OuterRef("key"), credit_type=OuterRef("credit_type"), effective_from__lte=now)
        .order_by("-effective_from", "-version")
        .values("pk")[:1]
    )
    rows = (
        Price.objects.filter(Q(effective_from__gt=now) | Q(pk=Subquery(latest_past)))
        .select_related("credit_type")
        .order_by("key", "credit_type_id", "-effective_from", "-version")
    )
    prices: dict[tuple[str, int], list[Price]] = {}
    for row in rows:
        prices.setdefault((row.key, row.credit_type_id), []).append(row)
    aliases = dict(ModelAlias.objects.values_list("alias", "target"))
    _stats["reloads"] += 1
    metrics.pricing_cache_reloads.inc()
    return Snapshot(
        stamp=stamp,
        loaded_at=time.monotonic(),
        prices={k: tuple(v) for k, v in prices.items()},
        aliases=aliases,
    )


def catalogue_snapshot() -> Snapshot:
    """The current catalogue, reloaded if any process changed it since we cached it."""
    global _snapshot
    stamp = catalogue_stamp()
    snapshot = _snapshot
    if snapshot is not None and snapshot.stamp == stamp and time.monotonic() - snapshot.loaded_at < _ttl():
        return snapshot
    with _snapshot_lock:
        # Another thread may have reloaded while we waited for the lock.
        snapshot = _snapshot
        if snapshot is not None and snapshot.stamp == stamp and time.monotonic() - snapshot.loaded_at < _ttl():
            return snapshot
        snapshot = _load(stamp)
        _snapshot = snapshot
        return snapshot


def _ttl() -> float:
    return settings.PRICING_CACHE_TTL_S


def catalogue_cache_clear() -> None:
    global _snapshot
    with _snapshot_lock:
        _snapshot = None


def catalogue_cache_reloads() -> int:
    """How many times this process loaded the catalogue (for tests and metrics)."""
    return _stats["reloads"]


# --- environment prices ------------------------------------------------------


@dataclass(frozen=True)
class EnvPrice:
    key: str  # canonical: `audio.upload`
    variable: str  # `CREDIT_COST_AUDIO_UPLOAD`
    per_request: Decimal


def env_key(key: str) -> str:
    """The form env prices are matched in: `audio_upload` and `audio.upload` are one key."""
    return key.lower().replace("_", ".")


def env_prices() -> dict[str, EnvPrice]:
    """CREDIT_COST_<ACTION> prices, keyed by their canonical key."""
    return {
        env_key(suffix): EnvPrice(key=env_key(suffix), variable=f"CREDIT_COST_{suffix}", per_request=value)
        for suffix, value in settings.CREDIT_COSTS.items()
    }


def env_price_get(key: str) -> EnvPrice | None:
    if not settings.CREDIT_COSTS:
        return None
    return env_prices().get(env_key(key))


# --- listings for the API, the admin and export --------------------------------


@dataclass(frozen=True)
class CatalogueRow:
    key: str
    credit_type: CreditType
    source: str  # "database" | "environment"
    version: Price | None
    per_request: Decimal
    per_1k_input_tokens: Decimal
    per_1k_output_tokens: Decimal
    per_unit: Decimal
    unit_name: str
    is_free: bool
    effective_from: datetime | None
    env_variable: str = ""
    shadowed_by: str = ""  # a database price hidden by an environment price


def prices_current(credit_type: CreditType | None = None) -> list[CatalogueRow]:
    """Every key's price in force now: database versions and environment prices."""
    snapshot = catalogue_snapshot()
    now = timezone.now()
    default_type = CreditType.objects.filter(code=settings.DEFAULT_CREDIT_TYPE).first()
    envs = env_prices()
    rows: list[CatalogueRow] = []
    for (key, credit_type_id), _versions in sorted(snapshot.prices.items()):
        if credit_type is not None and credit_type_id != credit_type.pk:
            continue
        version = snapshot.version_at(key, credit_type_id, now)
        if version is None:
            continue  # only scheduled versions so far
        shadow = envs.get(env_key(key)) if default_type and credit_type_id == default_type.pk else None
        rows.append(
            CatalogueRow(
                key=key,
                credit_type=version.credit_type,
                source="database",
                version=version,
                per_request=version.per_request,
                per_1k_input_tokens=version.per_1k_input_tokens,
                per_1k_output_tokens=version.per_1k_output_tokens,
                per_unit=version.per_unit,
                unit_name=version.unit_name,
                is_free=version.is_free,
                effective_from=version.effective_from,
                shadowed_by=shadow.variable if shadow else "",
            )
        )
    if default_type is not None and (credit_type is None or credit_type.pk == default_type.pk):
        for env in sorted(envs.values(), key=lambda e: e.key):
            rows.append(
                CatalogueRow(
                    key=env.key,
                    credit_type=default_type,
                    source="environment",
                    version=None,
                    per_request=env.per_request,
                    per_1k_input_tokens=Decimal(0),
                    per_1k_output_tokens=Decimal(0),
                    per_unit=Decimal(0),
                    unit_name="",
                    is_free=env.per_request == 0,
                    effective_from=None,
                    env_variable=env.variable,
                )
            )
    return rows


def aliases_all() -> dict[str, str]:
    return dict(catalogue_snapshot().aliases)


def price_versions(*, key: str, credit_type: CreditType):
    return Price.objects.filter(key=key, credit_type=credit_type).select_related("credit_type", "created_by")
