"""Reads for accounts, scoped to what the calling API key may see."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.exceptions import AccountNotFound
from accounts.models import Account, ApiKey
from config.rows import row_find


def accounts_visible_to(api_key: ApiKey) -> QuerySet[Account]:
    if api_key.is_service:
        return Account.objects.all()
    return Account.objects.filter(pk=api_key.account_id)


def key_may_see(api_key: ApiKey, account_id: int) -> bool:
    """Whether this API key may see rows of this account: a service key sees all, an account key its own."""
    return api_key.is_service or api_key.account_id == account_id


def account_get_for_key(*, api_key: ApiKey, public_id: str) -> Account:
    """The account, or AccountNotFound if it does not exist *or* this key may not see it."""
    if not isinstance(public_id, str) or len(public_id) > 64:
        raise AccountNotFound()
    if api_key.is_service:
        named = getattr(api_key, "named_account", None)  # read with the key (api_key_authenticate)
        if named is not None and named[0] == public_id:
            account = named[1]
        else:
            account = row_find(Account, by="public_id", value=public_id)
    else:
        # An account key sees its own account only, already loaded with the key.
        account = api_key.account if api_key.account.public_id == public_id else None
    if account is None:
        raise AccountNotFound()
    return account


def accounts_get_for_key(*, api_key: ApiKey, public_ids: set[str]) -> dict[str, Account]:
    """The accounts among `public_ids` that this key may see, by public id, in one query (a batch's look-up).

    An id missing from the answer is `account_get_for_key`'s AccountNotFound.
    """
    wanted = {p for p in public_ids if isinstance(p, str) and len(p) <= 64}
    if not api_key.is_service:
        own = api_key.account
        return {own.public_id: own} if own.public_id in wanted else {}
    return {account.public_id: account for account in Account.objects.filter(public_id__in=wanted)}
