"""Pricing anomalies: logged, counted and sent to Sentry; a zero-cost charge is also kept as a record.

A record stays open until staff mark it resolved (`anomalies_resolve`, who
and when kept on the row); the admin dashboard counts the open ones.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sentry_sdk
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from config import metrics
from pricing.exceptions import AnomalyResolvePermissionRequired
from pricing.models import KEY_MAX_LENGTH
from pricing.models import PricingAnomaly as PricingAnomalyRecord

if TYPE_CHECKING:
    from pricing.services.quotes import Quote

logger = logging.getLogger(__name__)


def anomaly_report(kind: str, message: str, **context: Any) -> None:
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
    transaction.on_commit(lambda: anomaly_report("zero_cost", "a paid key settled at zero", **context))
    return record


RESOLVE_PERMISSION = "pricing.resolve_pricinganomaly"


def anomalies_resolve(*, anomalies: QuerySet[PricingAnomalyRecord], user: Any, now: datetime | None = None) -> int:
    """Mark the open ones among `anomalies` resolved by `user`; returns how many it marked.

    A conditional update: one already resolved keeps its first resolver and
    time (two staff clicking at once mark each anomaly once).
    """
    if not user.has_perm(RESOLVE_PERMISSION):
        raise AnomalyResolvePermissionRequired()
    return anomalies.filter(resolved_at__isnull=True).update(resolved_at=now or timezone.now(), resolved_by=user)
