"""Reads for refunds: an account's history and the stats by route and reason."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum

from accounts.models import Account, ApiKey
from accounts.selectors import key_may_see
from billing.models import LedgerEntry
from config.rows import row_find
from refunds.exceptions import ChargeNotFound
from refunds.models import RefundLog


def charge_get_for_key(*, api_key: ApiKey, public_id: str) -> LedgerEntry:
    """The ledger entry, or ChargeNotFound if it does not exist or this key may not see its account."""
    if not isinstance(public_id, str) or len(public_id) > 64:
        raise ChargeNotFound()
    # A statement built once (config.rows): every refund starts here.
    entry = row_find(LedgerEntry, by="public_id", value=public_id, related=("account", "credit_type"))
    if entry is None or not key_may_see(api_key, entry.account_id):
        raise ChargeNotFound()
    return entry


def refunds_for_account(account: Account) -> QuerySet[RefundLog]:
    return RefundLog.objects.filter(account=account).select_related(
        "account", "credit_type", "charge", "refund_entry", "actor_api_key", "actor_user"
    )


def refunds_filtered(
    queryset: QuerySet[RefundLog] | None = None,
    *,
    api_route: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    credit_type: str | None = None,
) -> QuerySet[RefundLog]:
    queryset = RefundLog.objects.all() if queryset is None else queryset
    if api_route:
        queryset = queryset.filter(api_route=api_route)
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lt=until)
    if credit_type:
        queryset = queryset.filter(credit_type__code=credit_type)
    return queryset


def _rows(queryset: QuerySet[RefundLog], *group: str) -> list[dict]:
    rows = (
        queryset.values(*group, "credit_type__code", "credit_type__scale")
        .annotate(count=Count("id"), total=Sum("amount"))
        .order_by(*group, "credit_type__code")
    )
    result = []
    for row in rows:
        quantum = Decimal(1).scaleb(-row["credit_type__scale"])
        item = {name: row[name] for name in group}
        item.update(
            credit_type=row["credit_type__code"],
            count=row["count"],
            total_amount=format(row["total"].quantize(quantum), "f"),
        )
        result.append(item)
    return result


def refund_stats(queryset: QuerySet[RefundLog]) -> dict:
    """Count and total amount, by credit type, by reason and by route (amounts per credit type)."""
    return {
        "count": queryset.count(),
        "by_credit_type": _rows(queryset),
        "by_reason": _rows(queryset, "reason"),
        "by_route": _rows(queryset, "api_route"),
    }


def charges_refundable(charges: list[LedgerEntry]) -> dict[int, Decimal]:
    """What remains refundable of each charge (by pk), in one query: for pages that list many (display only)."""
    charges = [charge for charge in charges if charge.kind == LedgerEntry.Kind.CHARGE]
    refunded = dict(
        LedgerEntry.objects.filter(related_entry__in=[c.pk for c in charges], kind=LedgerEntry.Kind.REFUND)
        .values("related_entry")
        .annotate(total=Sum("amount"))
        .values_list("related_entry", "total")
    )
    return {
        charge.pk: (-charge.amount - refunded.get(charge.pk, Decimal(0))).quantize(charge.credit_type.quantum)
        for charge in charges
    }
