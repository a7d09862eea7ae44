"""Reads of events, scoped to what the calling API key may see."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiKey
from events.exceptions import EventNotFound
from events.models import EntryEvent, Event
from events.types import ENTRY_EVENT_TYPES


def events_retention_cutoff(*, now: datetime | None = None) -> datetime:
    """Events older than this are past retention: stored ones are purged, ledger entries' ones no longer listed."""
    return (now or timezone.now()) - timedelta(days=settings.CREDITLEDGER_EVENTS_RETENTION_DAYS)


def events_page(
    *,
    api_key: ApiKey,
    filtered: Callable[[QuerySet], QuerySet],
    type: str | None,
    before: int | None,
    limit: int,
) -> tuple[list[Event | EntryEvent], bool]:
    """One page of the events a key may see, newest first, below id `before`; and whether more follow.

    Each kind is read from its own table with its own indexes, newest first,
    `limit + 1` rows at most, and the two are merged: the stored events
    (`Event`, without the copies of entries' events) and the ledger's entries
    that are events (`EntryEvent`), bounded below by the first entry inside
    retention so that a short last page never walks older history. A type
    no entry can have skips the ledger. `filtered` applies
    the request's filters (type, account, created range) to a queryset of
    either kind.
    """
    cutoff = events_retention_cutoff()
    pages: list[Event | EntryEvent] = []
    # Stored events of every type (those recorded before billing's migration 0019 include entries' types).
    stored = Event.objects.filter(entry_id__isnull=True, created_at__gte=cutoff).select_related("account")
    pages += _newest(filtered(_scoped(stored, api_key)), before, limit)
    if type is None or type in ENTRY_EVENT_TYPES:
        first = EntryEvent.objects.filter(created_at__gte=cutoff).order_by("created_at").values_list("id", flat=True)
        first_id = first.first()
        if first_id is not None:
            entries = EntryEvent.objects.filter(type__isnull=False, id__gte=first_id, created_at__gte=cutoff)
            pages += _newest(filtered(_scoped(entries.select_related("account"), api_key)), before, limit)
    pages.sort(key=lambda event: event.id, reverse=True)
    return pages[:limit], len(pages) > limit


def _scoped(events: QuerySet, api_key: ApiKey) -> QuerySet:
    return events if api_key.is_service else events.filter(account_id=api_key.account_id)


def _newest(events: QuerySet, before: int | None, limit: int) -> list:
    if before is not None:
        events = events.filter(id__lt=before)
    return list(events.order_by("-id")[: limit + 1])


def event_get(public_id: str) -> Event | EntryEvent | None:
    """The event with this id within retention, or None.

    A ledger entry's event is found by its entry's id (`evt_txn_...` is
    `evt_` + the entry's), any other by its own id among the stored events:
    each by its unique index.
    """
    if not isinstance(public_id, str) or not public_id.startswith("evt_") or len(public_id) > 64:
        return None
    cutoff = events_retention_cutoff()
    entry = (
        EntryEvent.objects.select_related("account")
        .filter(entry_public_id=public_id.removeprefix("evt_"), type__isnull=False, created_at__gte=cutoff)
        .first()
    )
    if entry is not None:
        return entry
    stored = Event.objects.select_related("account")
    return stored.filter(public_id=public_id, entry_id__isnull=True, created_at__gte=cutoff).first()


def event_get_for_key(*, api_key: ApiKey, public_id: str) -> Event | EntryEvent:
    """The event, or EventNotFound if it does not exist, is past retention or this key may not see it."""
    event = event_get(public_id)
    if event is None or (not api_key.is_service and event.account_id != api_key.account_id):
        raise EventNotFound()
    return event
