"""Stripe-style idempotency for money-moving POSTs.

Every money-moving POST must carry `Idempotency-Key` (400
idempotency_key_required without one: a retried request without a key
would be a second charge). The request runs in one transaction that

1. claims the key with `INSERT ... ON CONFLICT DO NOTHING`. A concurrent
   duplicate blocks on the unique index until the first transaction ends (at
   most IDEMPOTENCY_LOCK_TIMEOUT_MS, then 409 idempotency_key_in_use), and
   then finds the committed record and replays it;
2. runs the effect (the services join this transaction: no savepoint);
3. stores the response (status and the exact bytes of its body) on the
   claimed row, so a replay is the first answer byte for byte;
4. commits effect and record together.

A business decline (`DomainError.replayable`) rolls the whole transaction
back and is recorded in a second, short one (see `_record_decline`).

So a crash loses both or neither, and duplicates charge once. The same key
with other parameters or on another endpoint answers 409
idempotency_key_reused. Validation errors are raised before the claim and
store nothing; business declines (`DomainError.replayable`, e.g. 402) are
stored so a failed charge stays failed on retry.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from accounts.models import ApiKey
from billing import statements
from billing.events import charge_declined_record
from billing.exceptions import (
    IdempotencyKeyInUse,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from billing.models import IdempotencyRecord
from config import metrics, pipeline
from config.atomic import services_join
from config.errors import DomainError, is_lock_timeout
from config.rows import row_update

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255
# Printable ASCII, no spaces; \Z, not $: "$" would let a trailing newline through.
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY_PATTERN = re.compile(KEY_PATTERN.removesuffix("$") + r"\Z")


def idempotency_key_valid(key: str) -> bool:
    """Whether `key` is a well-formed Idempotency-Key (the header's, or a batch item's)."""
    return bool(_KEY_PATTERN.match(key))


REPLAY_HEADER = "Idempotent-Replayed"

Result = tuple[int, dict]


def idempotency_key_from(request) -> str:
    """The request's Idempotency-Key; 400 when it is missing or malformed."""
    key = request.headers.get(HEADER)
    if key is None:
        raise IdempotencyKeyRequired()
    if not idempotency_key_valid(key):
        raise InvalidIdempotencyKey()
    return key


def request_fingerprint(*, endpoint: str, params: dict) -> str:
    canonical = json.dumps({"endpoint": endpoint, "params": params}, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim(*, account_id: int, api_key: ApiKey, key: str, endpoint: str, fingerprint: str) -> int | None:
    """Insert the record; its id, or None if a committed record already holds the key."""
    try:
        return statements.idempotency_claim(
            account_id=account_id,
            api_key_id=api_key.pk,
            key=key,
            endpoint=endpoint[:255],
            request_hash=fingerprint,
            created_at=timezone.now(),
            lock_timeout_ms=settings.IDEMPOTENCY_LOCK_TIMEOUT_MS,
        )
    except OperationalError as exc:
        if is_lock_timeout(exc):  # a duplicate's claim is still uncommitted
            raise IdempotencyKeyInUse() from exc
        raise


_RENDERER = JSONRenderer()
CONTENT_TYPE = "application/json"


def _render(body: dict) -> bytes:
    """The body as the API renders it (DRF's JSONRenderer, the one renderer configured)."""
    return _RENDERER.render(body)


def _answer(content: bytes, status: int) -> HttpResponse:
    return HttpResponse(content, status=status, content_type=CONTENT_TYPE)


def _replay(record: IdempotencyRecord) -> HttpResponse:
    if record.response_raw is not None:
        content = bytes(record.response_raw)
    else:  # a record from before response_raw
        content = _render(record.response_body)
    response = _answer(content, record.response_status)
    response[REPLAY_HEADER] = "true"
    return response


class _Declined(Exception):
    """Carries a replayable decline out of the request's transaction, rolling it back."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.code)
        self.error = error


class _Taken(Exception):
    """The claim found the key taken after the effect already ran (pipelined): roll back, then replay."""


def run_idempotent(
    request,
    *,
    account_id: int,
    endpoint: str,
    params: dict,
    effect: Callable[[], Result],
    route: str,
    pipelined: bool = False,
) -> HttpResponse:
    """Run `effect` (which returns (status, body)) at most once per Idempotency-Key.

    Keys are scoped to the account the request acts on (`account_id`) and the
    API key. `params` are the request's parameters as the client sent them;
    the same key with different params, or on a different endpoint, is refused.
    `route` (the URL pattern, never ids: bounded label values) labels the replay metric.

    `pipelined=True` runs the transaction in psycopg's pipeline mode
    (config/pipeline.py): the claim travels with the effect's first read (the
    wallet lock), and the effect's writes, the stored response and COMMIT
    travel together. The claim's answer is then known only after the effect
    has run: if the key was taken, everything the effect did is rolled back
    (nothing it did was visible or committed) and the stored answer replayed,
    exactly as if the effect had not run. Only for effects whose writes need
    no answer before the commit (a charge).
    """
    key = idempotency_key_from(request)
    fingerprint = request_fingerprint(endpoint=endpoint, params=params)
    claim = {
        "account_id": account_id,
        "api_key": request.auth,
        "key": key,
        "endpoint": endpoint,
        "fingerprint": fingerprint,
    }
    if not pipelined or connection.in_atomic_block:  # pipeline mode commits itself: only as the outermost block
        return _run(claim, effect, route=route)
    pending = None
    try:
        with transaction.atomic(), pipeline.pipelined():
            pending = _claim_send(**claim)
            try:
                with services_join():
                    status, body = effect()
            except DomainError as error:
                if pending.row() is None:
                    raise _Taken() from error
                if error.replayable:
                    raise _Declined(error) from error
                raise  # rolls back the claim too: nothing is stored
            row = pending.row()
            if row is None:
                raise _Taken()
            content = _render(body)
            row_update(IdempotencyRecord, row[0], response_status=status, response_raw=content)
            pipeline.commit_now()
        return _answer(content, status)
    except _Declined as declined:
        return _record_decline(claim, declined.error, route=route)
    except _Taken:
        return _replay_existing(**claim, route=route)
    except OperationalError as exc:
        # In pipeline mode the claim's lock timeout surfaces at the next read
        # (the wallet lock's): it is the claim's if the claim has no answer.
        if is_lock_timeout(exc) and pending is not None and not pending.answered():
            raise IdempotencyKeyInUse() from exc
        raise


def _run(claim: dict, effect: Callable[[], Result], *, route: str) -> HttpResponse:
    """`run_idempotent`, one statement at a time: claim, effect, stored response, commit."""
    try:
        with transaction.atomic():
            record_id = _claim(**claim)
            if record_id is None:
                return _replay_existing(**claim, route=route)
            try:
                with services_join():
                    status, body = effect()
            except DomainError as error:
                if error.replayable:
                    raise _Declined(error) from error
                raise  # rolls back the claim too: nothing is stored
            content = _render(body)
            row_update(IdempotencyRecord, record_id, response_status=status, response_raw=content)
        return _answer(content, status)
    except _Declined as declined:
        return _record_decline(claim, declined.error, route=route)


def _claim_send(*, account_id: int, api_key: ApiKey, key: str, endpoint: str, fingerprint: str):
    """`_claim`, its answer read later (`statements.PendingRow`)."""
    return statements.idempotency_claim_send(
        account_id=account_id,
        api_key_id=api_key.pk,
        key=key,
        endpoint=endpoint[:255],
        request_hash=fingerprint,
        created_at=timezone.now(),
        lock_timeout_ms=settings.IDEMPOTENCY_LOCK_TIMEOUT_MS,
    )


def _record_decline(claim: dict, error: DomainError, *, route: str) -> HttpResponse:
    """Store a business decline (402, 429, ...) so that a retry replays it.

    The effect's transaction, claim and partial writes included, has been
    rolled back whole (no savepoint to keep on the success path). The claim
    is made again in a transaction of its own; if a duplicate claimed the key
    in between, its answer came first and this request replays it.
    """
    status, content = error.status, _render(error.as_body())
    with transaction.atomic():
        record_id = _claim(**claim)
        if record_id is None:
            return _replay_existing(**claim, route=route)
        row_update(IdempotencyRecord, record_id, response_status=status, response_raw=content)
        charge_declined_record(error)  # a declined charge's event, with the decline it reports
    return _answer(content, status)


def _replay_existing(
    *,
    account_id: int,
    api_key: ApiKey,
    key: str,
    endpoint: str,
    fingerprint: str,
    route: str,
) -> HttpResponse:
    record = IdempotencyRecord.objects.get(account_id=account_id, api_key=api_key, key=key)
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused()
    metrics.IDEMPOTENT_REPLAYS.labels(endpoint=route).inc()
    return _replay(record)


def idempotency_records_purge(*, older_than: timedelta | None = None) -> int:
    """Delete records past the retention window (never less than 24 hours)."""
    age = max(older_than or timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS), timedelta(hours=24))
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - age).delete()
    return deleted


# --- the items of a batch ----------------------------------------------------------------
#
# Each item of POST /charges/batch carries its own key, stored exactly as a
# single POST /charges with that key and that item's body would store it
# (same scope, endpoint and fingerprint, the item's own status and bytes):
# an item already answered, by an earlier batch or by a single charge,
# replays that answer instead of charging again, and a single retry of one
# item replays the batch's answer for it. The batch's transaction claims the
# items' keys; like any claim, a concurrent duplicate waits for it to end.


@dataclass(frozen=True)
class ItemKey:
    """An item's key, scope and fingerprint (the single-charge endpoint's, for the item's own body)."""

    account_id: int
    key: str
    fingerprint: str


@dataclass(frozen=True)
class ItemReplay:
    """An item already answered: its first status and body bytes."""

    status: int
    content: bytes


def batch_items_claim(request, *, items: list[ItemKey], endpoint: str) -> list[int | ItemReplay | DomainError]:
    """Claim every item's key, in a fixed order (account, key); per item its record id, its replay, or its error.

    One statement for all the claims (`statements.idempotency_claim_many`),
    one read for the keys already taken. A key taken with another body or on
    another endpoint is that item's 409 idempotency_key_reused. A key still
    held by an unfinished request after the lock timeout fails the whole
    batch (409 idempotency_key_in_use): the transaction is aborted, nothing is
    stored, the client retries.
    """
    order = sorted(range(len(items)), key=lambda i: (items[i].account_id, items[i].key))
    try:
        claimed = statements.idempotency_claim_many(
            api_key_id=request.auth.pk,
            items=[(items[i].account_id, items[i].key, endpoint[:255], items[i].fingerprint) for i in order],
            created_at=timezone.now(),
            lock_timeout_ms=settings.IDEMPOTENCY_LOCK_TIMEOUT_MS,
        )
    except OperationalError as exc:
        if is_lock_timeout(exc):  # a duplicate's claim is still uncommitted
            raise IdempotencyKeyInUse() from exc
        raise
    results: list[int | ItemReplay | DomainError | None] = [claimed.get((i.account_id, i.key)) for i in items]
    taken = [index for index, result in enumerate(results) if result is None]
    if taken:
        records = {
            (record.account_id, record.key): record
            for record in IdempotencyRecord.objects.filter(
                api_key=request.auth,
                account_id__in={items[i].account_id for i in taken},
                key__in={items[i].key for i in taken},
            )
        }
        for index in taken:
            record = records[(items[index].account_id, items[index].key)]
            if record.request_hash != items[index].fingerprint:
                results[index] = IdempotencyKeyReused()
            else:
                results[index] = ItemReplay(status=record.response_status, content=_replay(record).content)
    return results  # type: ignore[return-value]  # every index was filled


def batch_items_record(*, answers: dict[int, tuple[int, bytes]], forget: list[int]) -> None:
    """Store the items' answers ({record id: (status, bytes)}) and drop the claims of items that store nothing."""
    statements.idempotency_answer_many(answers=answers)
    if forget:
        IdempotencyRecord.objects.filter(pk__in=forget).delete()


def render(body: dict) -> bytes:
    """The exact bytes the API answers with for `body`."""
    return _render(body)
