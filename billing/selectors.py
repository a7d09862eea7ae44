"""Reads from the ledger. Nothing here is used to authorise a charge."""

from __future__ import annotations

from django.db.models import QuerySet, Sum

from accounts.models import Account, ApiKey
from accounts.selectors import key_may_see
from billing.exceptions import HoldNotFound, HoldOwnedByAnotherKey, HoldOwnedByService
from billing.models import CreditLot, Hold, LedgerEntry, Wallet
from config.rows import row_find


def wallets_for_account(account: Account) -> list[Wallet]:
    return list(Wallet.objects.filter(account=account).select_related("credit_type").order_by("credit_type__code"))


def ledger_entries_for_account(account: Account) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(account=account).select_related(
        "credit_type", "account", "related_entry", "price_version"
    )


def hold_get_for_key(*, api_key: ApiKey, public_id: str) -> Hold:
    """The hold, or HoldNotFound if it does not exist or this key may not see its account."""
    if not isinstance(public_id, str) or len(public_id) > 64:
        raise HoldNotFound()
    # A statement built once (config.rows): captures and releases start here.
    hold = row_find(Hold, by="public_id", value=public_id, related=("account", "credit_type", "capture_entry"))
    if hold is None or not key_may_see(api_key, hold.account_id):
        raise HoldNotFound()
    return hold


def hold_get_to_resolve(*, api_key: ApiKey, public_id: str) -> Hold:
    """The hold this key may capture or release: a hold belongs to whoever opened it.

    A service key may resolve any hold. An account key only the holds it
    opened itself: a hold of another account is 404 (as for reading), one
    of its own account opened by the service (or by staff, or by another
    key of the account) is 403. Otherwise an account key could release, or
    capture at zero, a hold the service opened for a job it meters, and the
    service's capture would then fail and the usage never be charged.
    """
    hold = hold_get_for_key(api_key=api_key, public_id=public_id)
    if api_key.is_service or hold.actor_api_key_id == api_key.pk:
        return hold
    opener = ApiKey.objects.filter(pk=hold.actor_api_key_id).values_list("account_id", flat=True).first()
    if opener is not None and opener == api_key.account_id:
        raise HoldOwnedByAnotherKey()
    raise HoldOwnedByService()


def holds_for_account(account: Account) -> QuerySet[Hold]:
    return Hold.objects.filter(account=account).select_related("account", "credit_type", "capture_entry")


def lots_expiring_for_account(account: Account, *, per_credit_type: int = 20) -> dict[int, list[dict]]:
    """What will expire when, per credit type id: [{"amount", "expires_at"}] soonest first.

    Lots expiring at the same instant are summed (a plan's allowance and a
    promotion ending together show as one line).
    """
    rows = (
        CreditLot.objects.filter(wallet__account=account, remaining__gt=0, expires_at__isnull=False)
        .values("wallet__credit_type_id", "expires_at")
        .annotate(amount=Sum("remaining"))
        .order_by("wallet__credit_type_id", "expires_at")
    )
    expiring: dict[int, list[dict]] = {}
    for row in rows:
        items = expiring.setdefault(row["wallet__credit_type_id"], [])
        if len(items) < per_credit_type:
            items.append({"amount": row["amount"], "expires_at": row["expires_at"]})
    return expiring
