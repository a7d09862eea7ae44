"""Reads of webhook endpoints and deliveries."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from events.models import Event
from events.types import EVENT_TYPES, OFF_BY_DEFAULT
from webhooks.exceptions import WebhookEndpointNotFound
from webhooks.models import WebhookDelivery, WebhookEndpoint

_ALL_BY_DEFAULT = frozenset(EVENT_TYPES) - OFF_BY_DEFAULT

# Which event types some enabled endpoint receives, per process, for
# CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S: recording an event nobody receives
# (the common case) then costs no query under the wallet lock.
_subscribed_lock = threading.Lock()
_subscribed: tuple[float, frozenset[str]] = (float("-inf"), frozenset())


def endpoint_types(endpoint_event_types: list[str]) -> frozenset[str]:
    """The types an endpoint receives: its list, or every type but the off-by-default ones."""
    return frozenset(endpoint_event_types) if endpoint_event_types else _ALL_BY_DEFAULT


def subscribed_event_types() -> frozenset[str]:
    global _subscribed
    ttl = settings.CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S
    now = time.monotonic()
    loaded_at, types = _subscribed
    if ttl > 0 and now - loaded_at < ttl:
        return types
    found: set[str] = set()
    for listed in WebhookEndpoint.objects.filter(enabled=True).values_list("event_types", flat=True):
        found |= endpoint_types(listed)
    types = frozenset(found)
    with _subscribed_lock:
        _subscribed = (now, types)
    return types


def subscribed_event_types_prepare() -> None:
    """Reload the cached types if stale, before a posting's lock (events.services.events_prepare).

    With no cache (a TTL of 0, as in the tests) there is nothing to warm:
    the hook reads the table itself, under the lock.
    """
    if settings.CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S > 0:
        subscribed_event_types()


def subscribed_event_types_forget() -> None:
    """An endpoint changed in this process: look again on the next event."""
    global _subscribed
    with _subscribed_lock:
        _subscribed = (float("-inf"), frozenset())


def endpoints_for_event(event: Event) -> QuerySet[WebhookEndpoint]:
    """Enabled endpoints that receive this event and existed when it happened."""
    listed = Q(event_types__contains=[event.type])
    if event.type not in OFF_BY_DEFAULT:
        listed |= Q(event_types=[])
    return WebhookEndpoint.objects.filter(listed, enabled=True, created_at__lte=event.created_at)


def endpoints_all() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("-id")


def endpoint_get(*, public_id: str) -> WebhookEndpoint:
    if not isinstance(public_id, str) or len(public_id) > 64:
        raise WebhookEndpointNotFound()
    endpoint = WebhookEndpoint.objects.filter(public_id=public_id).first()
    if endpoint is None:
        raise WebhookEndpointNotFound()
    return endpoint


def deliveries_due(*, limit: int) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
