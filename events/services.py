"""Recording events, in the caller's transaction; the hooks that hear of them; the retention purge."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import connection, models
from django.utils import timezone

from accounts.models import Account
from config.rows import row_buffer_current, row_insert
from events.models import EntryEvent, Event, entry_event_public_id
from events.selectors import event_get, events_retention_cutoff
from events.types import ENTRY_EVENT_TYPES, EVENT_TYPES

EventHook = Callable[[Event], Iterable[models.Model] | None]
EntryRenderer = Callable[[list[int]], dict[int, dict]]
_hooks: list[EventHook] = []
_hook_wants: list[Callable[[str], bool]] = []
_prepares: list[Callable[[], None]] = []
_entry_renderers: list[EntryRenderer] = []


def _always(type: str) -> bool:
    return True


def event_hook_register(fn: EventHook, *, wants: Callable[[str], bool] | None = None) -> None:
    """Call `fn(event)` as each event is recorded; it returns the rows to write with the event (or None).

    The way an upper app (webhooks) hears of events without this app naming
    it. A hook runs inside the caller's transaction, possibly under a wallet
    lock: it must be quick and touch no network (queue work for after commit).
    It does not write its rows itself: they go out with the event, in the
    same statement where the caller writes the event with its change
    (`event_rows`). `wants(type)`, if given, says cheaply whether the hook
    would add anything for an event of that type: a ledger entry's event,
    which is a column of the entry, builds no `Event` for hooks that want
    none (`entry_event_rows`).
    """
    if fn not in _hooks:
        _hooks.append(fn)
        _hook_wants.append(wants or _always)


def entry_event_renderer_register(fn: EntryRenderer) -> None:
    """`fn(entry_ids)` returns each ledger entry's API body by id, its event's data (billing registers it)."""
    if fn not in _entry_renderers:
        _entry_renderers.append(fn)


def entry_event_data(entry_ids: list[int]) -> dict[int, dict]:
    """Ledger entries' events' data by entry id: their entries' API bodies, rendered now (entries never change)."""
    if not entry_ids:
        return {}
    if not _entry_renderers:  # pragma: no cover - billing registers one when its app is ready
        raise RuntimeError("no renderer for ledger entries' events is registered (billing's AppConfig.ready).")
    return _entry_renderers[0](list(entry_ids))


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


def entry_event_rows(*, type: str, account: Account, entry_public_id: str) -> list[models.Model]:
    """The rows hooks add for a ledger entry's event (`type` is written on the entry itself), unsaved.

    Billing's posting calls this for an entry with an event and writes what it
    returns in the entry's own statement. Most of the time no hook wants the
    type and this builds nothing: the event costs the charge one column.
    """
    if type not in ENTRY_EVENT_TYPES:
        raise ValueError(f"{type!r} is not a ledger entry's event type: add it to ENTRY_EVENT_TYPES (events/types.py).")
    hooks = [hook for hook, wants in zip(_hooks, _hook_wants, strict=True) if wants(type)]
    if not hooks:
        return []
    event = Event(
        public_id=entry_event_public_id(entry_public_id), type=type, account=account, created_at=timezone.now()
    )
    rows: list[models.Model] = []
    for hook in hooks:
        rows.extend(hook(event) or ())
    return rows


def event_materialize(public_id: str) -> Event | None:
    """The stored `Event` for an event id, copying a ledger entry's event into a row if needed; None if none.

    A webhook delivery points at a row; a ledger entry's event has none until
    its first delivery needs one (after commit, in the worker). The copy takes
    the entry's id, time and body, so it is the same event wherever it is read;
    two workers copying at once make one row. Found as the API finds it
    (`events.selectors.event_get`): past retention, there is nothing to deliver.
    """
    stored = Event.objects.select_related("account").filter(public_id=public_id)
    event = stored.first()  # a stored event, or an entry's event already copied
    if event is not None:
        return event
    entry = event_get(public_id)
    if not isinstance(entry, EntryEvent):
        return entry
    copy = Event(
        id=entry.id,
        entry_id=entry.id,
        public_id=entry.public_id,
        type=entry.type,
        account_id=entry.account_id,
        created_at=entry.created_at,
        api_version=entry.api_version,
        data=entry.data,
    )
    Event.objects.bulk_create([copy], ignore_conflicts=True)
    return stored.first()


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
    """Delete stored events older than the retention period, in batches; how many were deleted.

    A ledger entry's event is the entry, which is kept: the feed stops
    showing it after the retention period (`events.selectors`).
    """
    cutoff = events_retention_cutoff(now=now)
    deleted = 0
    while True:
        ids = list(Event.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        # Through the ORM: an upper app's rows that point at an event (webhook deliveries) go with it.
        Event.objects.filter(id__in=ids).delete()
        deleted += len(ids)
