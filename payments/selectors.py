"""Reads for payments: packs, purchases, auto-recharge settings, the portal's figures."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Account
from billing.models import CreditLot, LedgerEntry
from payments.exceptions import PackNotFound
from payments.models import AutoRecharge, CreditPack, Purchase
from subscriptions.models import AllowanceGrant


def packs_active() -> QuerySet[CreditPack]:
    return CreditPack.objects.filter(is_active=True).select_related("credit_type").order_by("price_minor", "id")


def pack_get_active(public_id: str) -> CreditPack:
    pack = packs_active().filter(public_id=public_id).first() if isinstance(public_id, str) else None
    if pack is None:
        raise PackNotFound()
    return pack


def purchases_for_account(account: Account, limit: int = 20) -> list[Purchase]:
    return list(Purchase.objects.filter(account=account).select_related("credit_type", "pack").order_by("-id")[:limit])


def auto_recharges_for_account(account: Account) -> list[AutoRecharge]:
    return list(
        AutoRecharge.objects.filter(wallet__account=account)
        .select_related("wallet__credit_type", "pack")
        .order_by("id")
    )


def daily_usage_series(account: Account, *, days: int = 30) -> dict[int, list[tuple]]:
    """Per credit type id: [(date, spent)] for each of the last `days` days, zeros included (charges net of refunds)."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    rows = (
        LedgerEntry.objects.filter(
            account=account,
            kind__in=[LedgerEntry.Kind.CHARGE, LedgerEntry.Kind.REFUND],
            created_at__date__gte=first,
        )
        .annotate(day=TruncDate("created_at"))
        .values("credit_type_id", "day")
        .annotate(total=Sum("amount"))
    )
    spent: dict[int, dict] = {}
    for row in rows:
        spent.setdefault(row["credit_type_id"], {})[row["day"]] = -row["total"]
    return {
        credit_type_id: [
            (first + timedelta(days=i), max(by_day.get(first + timedelta(days=i), Decimal(0)), Decimal(0)))
            for i in range(days)
        ]
        for credit_type_id, by_day in spent.items()
    }


def portal_history(account: Account, limit: int = 25) -> list[tuple[LedgerEntry, str, str]]:
    """The account's newest entries for its customer: (entry, label, detail).

    The label says what happened in the customer's words, from the entry's
    kind and what it came from (a purchase, a plan's allowance); the
    ledger's own descriptions are staff reasons and internal references
    ("Purchase pur_...", a grant's reason), so they are never shown. The one
    exception is a charge's description when no staff user made it: the
    app's own words for the usage it metered (an API key or the system).
    """
    entries = list(
        LedgerEntry.objects.filter(account=account)
        .select_related("credit_type")
        .only("public_id", "kind", "amount", "description", "metadata", "actor_user", "created_at", "credit_type")
        .order_by("-id")[:limit]
    )
    grant_ids = [e.pk for e in entries if e.kind == LedgerEntry.Kind.GRANT]
    purchased = set(
        CreditLot.objects.filter(entry_id__in=grant_ids, source=CreditLot.Source.PURCHASED).values_list(
            "entry_id", flat=True
        )
    )
    allowances = set(AllowanceGrant.objects.filter(entry_id__in=grant_ids).values_list("entry_id", flat=True))
    history = []
    for entry in entries:
        detail = ""
        if entry.kind == LedgerEntry.Kind.CHARGE:
            label = "Usage"
            detail = entry.description if entry.actor_user_id is None else ""
        elif entry.kind == LedgerEntry.Kind.REFUND:
            label = "Refund"
        elif entry.kind == LedgerEntry.Kind.EXPIRY:
            label = "Expired"
        elif entry.kind == LedgerEntry.Kind.GRANT:
            label = (
                "Credits purchased"
                if entry.pk in purchased
                else "Plan allowance"
                if entry.pk in allowances
                else "Credits added"
            )
        elif entry.kind == LedgerEntry.Kind.ADJUSTMENT and (entry.metadata or {}).get("purchase"):
            label = "Purchased credits taken back"  # a payment refunded or disputed
        else:
            label = "Adjustment"
        history.append((entry, label, detail))
    return history
