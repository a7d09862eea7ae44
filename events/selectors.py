"""Reads of events, scoped to what the calling API key may see."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiKey
from events.exceptions import EventNotFound
from events.models import Event


def events_for_key(*, api_key: ApiKey) -> QuerySet[Event]:
    """Every event a service key may see; an account key sees its own account's only."""
    events = Event.objects.select_related("account")
    if not api_key.is_service:
        events = events.filter(account_id=api_key.account_id)
    return events


def event_get_for_key(*, api_key: ApiKey, public_id: str) -> Event:
    """The event, or EventNotFound if it does not exist, is past retention or this key may not see it."""
    if not isinstance(public_id, str) or len(public_id) > 64:
        raise EventNotFound()
    event = events_for_key(api_key=api_key).filter(public_id=public_id).first()
    if event is None:
        raise EventNotFound()
    return event
