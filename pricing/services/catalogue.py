"""Catalogue writes: price versions and aliases, and the validation the model, the admin and the importer share.

Writes (`price_create`, `alias_set`, `alias_delete`, and `prices_import`
through them) run in a transaction that first locks the catalogue revision
row, so catalogue changes are serialised and each one changes the revision
stamp that every process's cache checks.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from pricing.models import UNIT_PRICE_FIELDS, CatalogueRevision, CreditType, ModelAlias, Price
from pricing.selectors import env_price_get

logger = logging.getLogger(__name__)


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
