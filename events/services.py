"""Recording events, in the caller's transaction; the hooks that hear of them; the retention purge."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from accounts.models import Account
from config.rows import row_buffer_current, row_insert
from events.models import Event
from events.types import EVENT_TYPES

EventHook = Callable[[Event], Iterable[models.Model] | None]
_hooks: list[EventHook] = []
_prepares: list[Callable[[], None]] = []


def event_hook_register(fn: EventHook) -> None:
    """Call `fn(event)` as each event is recorded; it returns the rows to write with the event (or None).

    The way an upper app (webhooks) hears of events without this app naming
    it. A hook runs inside the caller's transaction, possibly under a wallet
    lock: it must be quick and touch no network (queue work for after commit).
    It does not write its rows itself: they go out with the event, in the
    same statement where the caller writes the event with its change
    (`event_rows`).
    """
    if fn not in _hooks:
        _hooks.append(fn)


def event_hook_prepare_register(fn: Callable[[], None]) -> None:
    """Call `fn()` before a money operation takes its wallet lock (`events_prepare`).

    Where a hook refreshes what it reads while an event is recorded (webhooks:
    which types some endpoint receives), so that read happens before the
    lock, never while other charges on the wallet wait.
    """
    if fn not in _prepares:
        _prepares.append(fn)


def events_prepare() -> None:
    """Run the registered prepare functions: billing's posting calls this before it locks a wallet."""
    for fn in _prepares:
        fn()


def event_rows(*, type: str, account: Account | None, data: dict) -> list[models.Model]:
    """The event (first) and the rows its hooks add, unsaved: for a caller that writes them in its own statement.

    billing's posting writes them in the statement that writes the ledger
    entry they report (`config.rows.row_update_then_insert(also=...)`), so an
    event costs the charge no statement of its own. Must be called inside
    the transaction that will write them.
    """
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {type!r}: add it to events/types.py.")
    if not connection.in_atomic_block:
        raise RuntimeError("an event must be recorded inside the transaction of the change it reports.")
    event = Event(type=type, account=account, data=data, created_at=timezone.now())
    rows: list[models.Model] = [event]
    for hook in _hooks:
        rows.extend(hook(event) or ())
    return rows


def event_record(*, type: str, account: Account | None, data: dict) -> Event:
    """Record one event in the caller's transaction: it commits or rolls back with the change it reports.

    `data` is the object's snapshot, the same body the API returns for it
    (amounts as strings at their credit type's scale). Must be called inside
    a transaction (the service's own): outside one it would commit alone.
    """
    rows = event_rows(type=type, account=account, data=data)
    buffer = row_buffer_current()
    if buffer is not None:
        # Inside a batch's postings (billing.core.postings_for_debit): written with the batch's rows, in
        # order, so an alert's event follows the charge that caused it.
        buffer.insert(*rows)
        return rows[0]
    for row in rows:
        row_insert(row)
    return rows[0]


def events_purge_expired(*, now=None, batch_size: int = 5000) -> int:
    """Delete events older than the retention period, in batches; how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CREDITLEDGER_EVENTS_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(Event.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        # Through the ORM: an upper app's rows that point at an event (webhook deliveries) go with it.
        Event.objects.filter(id__in=ids).delete()
        deleted += len(ids)
