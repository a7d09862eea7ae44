"""`manage.py stripe_sync`: find what webhooks missed, by asking Stripe, through the same idempotent path.

Events created since `since` are listed and stored once each (source
`sync`); any not yet processed (new, or failed before) is processed now.
Stripe's subscriptions are then read as they stand and mirrored, as of the
moment Stripe listed them (so an older event arriving later is ignored).
That moment is Stripe's clock (the list response's `Date`), the clock its
events' `created` is on: stamped with ours, a clock running ahead would make
a change made just after the listing look older than it, and it would be
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from payments.models import StripeEvent
from payments.services.events import VersionClaim, object_version_claim, stripe_event_process, stripe_event_store
from payments.services.subscriptions import subscription_apply
from payments.stripe_api import stripe_client


@dataclass
class SyncReport:
    events_seen: int = 0
    events_stored: int = 0
    events_processed: int = 0
    subscriptions_seen: int = 0
    subscriptions_applied: int = 0


def stripe_sync(*, since: datetime) -> SyncReport:
    client = stripe_client()
    report = SyncReport()
    events = client.v1.events.list(params={"created": {"gte": int(since.timestamp())}, "limit": 100})
    # Stripe lists newest first; store them all, then apply oldest first (a payment before its refund).
    stored_events = []
    for listed in events.auto_paging_iter():
        report.events_seen += 1
        stored, created = stripe_event_store(payload=listed.to_dict(for_json=True), source="sync")
        report.events_stored += created
        stored_events.append(stored)
    for stored in sorted(stored_events, key=lambda e: (e.stripe_created, e.pk)):
        if stored.status in (StripeEvent.Status.RECEIVED, StripeEvent.Status.FAILED):
            stripe_event_process(event_id=stored.pk)
            report.events_processed += 1
    page = client.v1.subscriptions.list(params={"status": "all", "limit": 100})
    while True:
        listed_at = stripe_response_time(page) or timezone.now()
        for subscription in page.data:
            report.subscriptions_seen += 1
            with transaction.atomic():
                # As listed then: Stripe's current state, so a tie with an event is as good as newer.
                if object_version_claim(stripe_id=subscription.id, version=listed_at) != VersionClaim.OLDER:
                    status, _ = subscription_apply(subscription.to_dict(for_json=True))
                    report.subscriptions_applied += status == "processed"
        if not page.has_more:
            break
        page = page.next_page()
    return report


def stripe_response_time(stripe_object: Any) -> datetime | None:
    """When Stripe answered the request that returned `stripe_object`, by Stripe's clock (its `Date` header)."""
    response = getattr(stripe_object, "last_response", None)
    date = (response.headers.get("Date") or response.headers.get("date")) if response is not None else None
    if not date:
        return None
    try:
        return parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
