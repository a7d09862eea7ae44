"""Display cache for GET /accounts/{id}/balance. Never used to authorise anything.

Charges, holds and limits read the locked wallet row; only the balance
*display* is served from Redis (Django's default cache) with a TTL.

Staleness: every change to any of an account's wallets goes through
`billing.core.Posting`, which calls `balance_cache_invalidate_on_commit`:
the account's token is replaced once the transaction commits, together with
every other account the transaction changed (one Redis round trip for a
batch of 100 charges, not 100). Invalidation does not delete the cached body;
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
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

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
    balance_cache_invalidate_many(accounts=[account])


def balance_cache_invalidate_many(*, accounts: Iterable[str]) -> None:
    """Retire these accounts' cached balances in one Redis round trip (run after commit). Never raises."""
    tokens = {_version_key(account): uuid.uuid4().hex for account in accounts}
    if not tokens:
        return
    try:
        cache.set_many(tokens, timeout=None)
    except Exception:
        logger.warning("balance cache invalidation failed for accounts %s", sorted(tokens), exc_info=True)
        metrics.BALANCE_CACHE.labels(result="invalidate_error").inc()


class _AfterCommit:
    """The accounts one transaction changed, retired together by one on_commit callback."""

    def __init__(self) -> None:
        self.accounts: set[str] = set()

    def __call__(self) -> None:
        balance_cache_invalidate_many(accounts=self.accounts)


def balance_cache_invalidate_on_commit(*, account: str) -> None:
    """Retire the account's cached balance once the current transaction commits (now, outside one).

    The accounts of one transaction share one callback, found among the
    connection's pending on_commit callbacks. Django drops the callbacks
    registered inside a savepoint that rolls back; an account added later
    then starts a new callback, so none is lost. One added to a callback
    from an enclosing scope and then rolled back with its savepoint is still
    retired: one read from the database too many, never a stale one.
    """
    if not connection.in_atomic_block:
        balance_cache_invalidate(account=account)
        return
    for _, callback, _ in connection.run_on_commit:
        if isinstance(callback, _AfterCommit):
            callback.accounts.add(account)
            return
    callback = _AfterCommit()
    callback.accounts.add(account)
    transaction.on_commit(callback, robust=True)
