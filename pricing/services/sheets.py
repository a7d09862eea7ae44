"""Price sheets: `prices_import` applies one all-or-nothing (`import_prices` reads it from JSON or CSV)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from pricing.models import UNIT_PRICE_FIELDS, CreditType, ModelAlias, Price
from pricing.services.catalogue import alias_set, price_create, price_same


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
