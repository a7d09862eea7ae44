"""Display cache for GET /accounts/{id}/balance. Never used to authorise anything.

Charges, holds and limits read the locked wallet row; only the balance
*display* is served from Redis (Django's default cache) with a TTL.

Staleness: every change to any of an account's wallets calls
`billing.core.Posting` (after any wallet change), which registers `balance_cache_invalidate`
with `transaction.on_commit`. Invalidation does not delete the cached body;
it replaces the account's *version token*, and bodies are stored under
(account, token). A reader takes the token *before* it reads the database,
so a reader that raced a change stores its (possibly old) body under a token
that is already retired and that no one reads again: a stale body can never
outlive the invalidation that follows a change.

Redis trouble never breaks anything: every cache call is wrapped, a failure
is logged and counted, and the read falls back to the database. Invalidation
failures are logged too; the TTL bounds how long a body cached before an
outage can be shown once Redis is back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from config import metrics

logger = logging.getLogger(__name__)

SOURCE_CACHE = "cache"
SOURCE_DATABASE = "database"


def _version_key(account: str) -> str:
    return f"balance:version:{account}"


def _body_key(account: str, version: str) -> str:
    return f"balance:body:{account}:{version}"


def _current_version(account: str) -> str:
    key = _version_key(account)
    version = cache.get(key)
    if version is None:
        # First reader (or Redis lost the key): start a fresh token. add() keeps
        # a token another process set in between.
        cache.add(key, uuid.uuid4().hex, timeout=None)
        version = cache.get(key)
    return version


def balance_display(*, account: str, load: Callable[[], dict], refresh: bool = False) -> tuple[dict, str]:
    """The account's balance body and where it came from ("cache" or "database").

    `account` is the account's public id (random, never reused, unlike a
    row id after a test database is recreated). `load` reads the database.
    With `refresh=True` the cache is neither read nor written; likewise
    inside a transaction, whose reads may include its own uncommitted
    writes: those must never be published to other readers.
    """
    if refresh or connection.in_atomic_block:
        metrics.BALANCE_CACHE.labels(result="bypass").inc()
        return load(), SOURCE_DATABASE
    try:
        version = _current_version(account)
        body = cache.get(_body_key(account, version)) if version else None
    except Exception:
        logger.warning("balance cache unavailable; reading the database", exc_info=True)
        metrics.BALANCE_CACHE.labels(result="error").inc()
        return load(), SOURCE_DATABASE
    if body is not None:
        metrics.BALANCE_CACHE.labels(result="hit").inc()
        return body, SOURCE_CACHE
    metrics.BALANCE_CACHE.labels(result="miss").inc()
    body = load()
    if version:
        try:
            cache.set(_body_key(account, version), body, timeout=settings.CREDITLEDGER_BALANCE_CACHE_TTL_S)
        except Exception:
            logger.warning("balance cache write failed", exc_info=True)
            metrics.BALANCE_CACHE.labels(result="error").inc()
    return body, SOURCE_DATABASE


def balance_cache_invalidate(*, account: str) -> None:
    """Retire the account's cached balance (run after commit). Never raises."""
    try:
        cache.set(_version_key(account), uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.warning("balance cache invalidation failed for account %s", account, exc_info=True)
        metrics.BALANCE_CACHE.labels(result="invalidate_error").inc()
