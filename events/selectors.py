"""Reads of events, scoped to what the calling API key may see."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import ApiKey
from events.exceptions import EventNotFound
from events.models import Event, FeedEvent


def events_retention_cutoff(*, now: datetime | None = None) -> datetime:
    """Events older than this are past retention: stored ones are purged, ledger entries' ones no longer listed."""
    return (now or timezone.now()) - timedelta(days=settings.CREDITLEDGER_EVENTS_RETENTION_DAYS)


def events_feed() -> QuerySet[FeedEvent]:
    """Every event within retention, stored and ledger entries' alike (`FeedEvent`)."""
    return FeedEvent.objects.filter(created_at__gte=events_retention_cutoff())


def events_for_key(*, api_key: ApiKey) -> QuerySet[FeedEvent]:
    """Every event a service key may see; an account key sees its own account's only."""
    events = events_feed().select_related("account")
    if not api_key.is_service:
        events = events.filter(account_id=api_key.account_id)
    return events


def event_get(public_id: str) -> FeedEvent | None:
    """The event with this id within retention, or None.

    Looked up where an index finds it: a ledger entry's event by its entry's
    id (`evt_txn_...` is `evt_` + the entry's), any other by its own id in
    the stored events; never by the feed's computed id, which would scan the
    ledger.
    """
    if not isinstance(public_id, str) or not public_id.startswith("evt_") or len(public_id) > 64:
        return None
    feed = events_feed().select_related("account")
    found = feed.filter(entry_public_id=public_id.removeprefix("evt_")).first()
    if found is not None:
        return found
    stored = Event.objects.filter(public_id=public_id, entry_id__isnull=True).values_list("pk", flat=True).first()
    return None if stored is None else feed.filter(pk=stored).first()


def event_get_for_key(*, api_key: ApiKey, public_id: str) -> FeedEvent:
    """The event, or EventNotFound if it does not exist, is past retention or this key may not see it."""
    event = event_get(public_id)
    if event is None or (not api_key.is_service and event.account_id != api_key.account_id):
        raise EventNotFound()
    return event
