"""Writes for accounts and API keys."""

from __future__ import annotations

import hashlib
import hmac
from copy import copy
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.exceptions import AccountAlreadyExists
from accounts.ids import random_token
from accounts.models import Account, ApiKey
from config.audit import audit_update
from config.rows import row_find_also

KEY_SCHEME = "clk"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def account_create(*, external_id: str, name: str = "", email: str = "") -> Account:
    try:
        with transaction.atomic():
            return Account.objects.create(external_id=external_id, name=name, email=email)
    except IntegrityError as exc:
        raise AccountAlreadyExists(external_id=external_id) from exc


def account_set_status(*, account: Account, status: str) -> Account:
    before = copy(account)
    Account.objects.filter(pk=account.pk).update(status=status, updated_at=timezone.now())
    account.status = status
    audit_update(before=before, after=account, fields=["status"])
    return account


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str  # shown to the caller once; never stored


def api_key_create(*, kind: str, account: Account | None = None, name: str = "", created_by=None) -> IssuedApiKey:
    """Create a key and return its secret, which is not stored anywhere."""
    if kind == ApiKey.Kind.ACCOUNT and account is None:
        raise ValueError("an account key needs an account")
    if kind == ApiKey.Kind.SERVICE:
        account = None
    prefix = f"{KEY_SCHEME}_{random_token(12)}"
    secret = f"{prefix}_{random_token(40)}"
    api_key = ApiKey.objects.create(
        kind=kind,
        account=account,
        name=name,
        prefix=prefix,
        secret_hash=_digest(secret),
        created_by=created_by,
    )
    return IssuedApiKey(api_key=api_key, secret=secret)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    now = timezone.now()
    before = copy(api_key)
    claimed = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    api_key.refresh_from_db(fields=["revoked_at"])
    if claimed:  # only the revocation that took effect goes on the audit trail
        before.revoked_at = None
        audit_update(before=before, after=api_key, fields=["revoked_at"])
    return api_key


def api_key_authenticate(secret: str, *, account_hint: str | None = None) -> ApiKey | None:
    """The live key for this secret, or None. Constant-time digest comparison.

    `account_hint`, the public id of the account the request names, is read
    in the same statement (one round trip for both: docs/performance.md) and
    kept on the key for `accounts.selectors.account_get_for_key`, which still
    decides what the key may see. It is a read of this request, never cached.
    """
    parts = secret.split("_")
    if len(parts) != 3 or parts[0] != KEY_SCHEME or len(secret) > 128:
        return None
    prefix = f"{parts[0]}_{parts[1]}"
    # Every API request starts here: one statement built once (config.rows), not an ORM query compiled per call.
    hint = account_hint if isinstance(account_hint, str) and 0 < len(account_hint) <= 64 else None
    also = (Account, "public_id", hint) if hint is not None else None
    api_key, named = row_find_also(ApiKey, by="prefix", value=prefix, related="account", also=also)
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _digest(secret)):
        return None
    if api_key.is_revoked:
        return None
    if hint is not None:
        api_key.named_account = (hint, named)
    _touch_last_used(api_key)
    return api_key


def _touch_last_used(api_key: ApiKey) -> None:
    # One conditional write per key per resolution window, not one per request.
    now = timezone.now()
    window = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_S)
    if api_key.last_used_at is None or now - api_key.last_used_at >= window:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
