"""Webhook endpoints and deliveries: the writes.

The path of an event to a receiver:

1. A service records the event in its transaction (`events.services.event_record`,
   or, for a ledger entry, in the posting's own statement: `Posting.post(event=...)`);
   `event_hook`, run right there, returns a transactional-outbox message
   (`billing.outbox`, topic `webhook.fanout`) to be written with the event if
   some enabled endpoint may receive its type. No endpoint, no row: the
   charge path pays nothing more.
   Nothing touches the network inside the transaction (or the wallet lock).
2. After commit a Celery worker is asked to dispatch the fan-outs due (one
   request per process per short window, `fanout_kick`; the outbox sweep
   catches a lost request): `event_fanout` writes one
   `WebhookDelivery` per receiving endpoint and enqueues its first attempt.
3. `delivery_attempt` claims a due delivery with a conditional UPDATE
   (so two workers never send the same attempt), checks the URL again,
   POSTs the signed event (CREDITLEDGER_WEBHOOK_TIMEOUT_S), records the
   attempt, and either marks it delivered (2xx) or schedules the next
   attempt after CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S (+-20% jitter);
   after the last one the delivery is failed. `deliveries_sweep` (every 30 s)
   runs any due attempt whose enqueue was lost.
4. An endpoint that has failed without a success for
   CREDITLEDGER_WEBHOOK_DISABLE_AFTER_DAYS is disabled and staff are alerted
   (an `alert.*` outbox message: log + Sentry; the admin shows it).

Why deliveries are rows of their own rather than one outbox message each:
they need a per-endpoint schedule over days, a record of every attempt and
a staff "resend", which the outbox (a generic, short-backoff dispatcher)
does not keep. The outbox still carries the step that must not be lost: from
the committed event to its deliveries.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import timedelta
from functools import partial

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from billing.models import OutboxMessage
from billing.outbox import outbox_enqueue, outbox_handler, outbox_message_build, outbox_message_dispatch
from events.api import event_body
from events.models import Event
from events.services import event_materialize
from events.types import EVENT_TYPES
from webhooks.exceptions import UnknownEventType, WebhookUrlRefused
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.secrets import secret_decrypt, secret_encrypt, secret_generate
from webhooks.selectors import (
    deliveries_due,
    endpoints_for_event,
    subscribed_event_types,
    subscribed_event_types_forget,
)
from webhooks.ssrf import url_check

logger = logging.getLogger(__name__)

FANOUT_TOPIC = "webhook.fanout"
RESPONSE_KEEP_BYTES = 1024
LEASE = timedelta(seconds=60)  # a claimed attempt is retried by the sweep if its worker died


# --- endpoints ----------------------------------------------------------------------


def _event_types_validate(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise UnknownEventType(f"Unknown event types: {', '.join(unknown)}.", param="event_types")
    return sorted(set(event_types))


def _forget_after_commit() -> None:
    transaction.on_commit(subscribed_event_types_forget)


def endpoint_create(
    *, url: str, description: str = "", event_types: list[str] | None = None, enabled: bool = True
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret, in clear: the only time it is shown."""
    url_check(url)
    secret = secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        description=description,
        event_types=_event_types_validate(event_types or []),
        enabled=enabled,
        secret_encrypted=secret_encrypt(secret),
    )
    _forget_after_commit()
    return endpoint, secret


def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str | None = None,
    description: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change what was given; enabling an endpoint clears its failure record."""
    if url is not None and url != endpoint.url:
        url_check(url)
        endpoint.url = url
    if description is not None:
        endpoint.description = description
    if event_types is not None:
        endpoint.event_types = _event_types_validate(event_types)
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        if enabled:
            endpoint.failing_since = None
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
        else:
            endpoint.disabled_at = timezone.now()
            endpoint.disabled_reason = "Disabled by request."
    endpoint.save()
    _forget_after_commit()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()
    _forget_after_commit()


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint, grace_hours: float | None = None) -> str:
    """A new secret (returned in clear, once); the current one keeps signing alongside it for the grace period."""
    hours = settings.CREDITLEDGER_WEBHOOK_SECRET_GRACE_HOURS if grace_hours is None else grace_hours
    secret = secret_generate()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted if hours > 0 else ""
        locked.previous_secret_expires_at = timezone.now() + timedelta(hours=hours) if hours > 0 else None
        locked.secret_encrypted = secret_encrypt(secret)
        locked.save(update_fields=["previous_secret_encrypted", "previous_secret_expires_at", "secret_encrypted"])
    endpoint.refresh_from_db()
    return secret


def endpoint_signing_secrets(endpoint: WebhookEndpoint, *, now=None) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one within its grace period."""
    secrets = [secret_decrypt(endpoint.secret_encrypted)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted and expires is not None and expires > (now or timezone.now()):
        secrets.append(secret_decrypt(endpoint.previous_secret_encrypted))
    return secrets


# --- from a recorded event to its deliveries ------------------------------------------


def event_hook(event: Event) -> list[OutboxMessage]:
    """As an event is recorded: its fan-out message if some endpoint may receive it (events.services hook).

    The message is written with the event, in the caller's statement; the
    dispatch request follows the commit.
    """
    if event.type not in subscribed_event_types():
        return []
    transaction.on_commit(fanout_kick, robust=True)
    return [outbox_message_build(topic=FANOUT_TOPIC, payload={"event": event.public_id})]


# One dispatch request per process per window rather than one per event: a
# Celery publish costs more than the charge's own statements. The request
# runs the fan-outs due at the window's end, after every commit that asked
# within the window, so none waits for the sweep; the latency added is at
# most CREDITLEDGER_WEBHOOK_FANOUT_WINDOW_S.
_fanout_window = -1


def fanout_kick() -> None:
    """After commit: make sure a worker dispatches the fan-outs due at the end of this window."""
    global _fanout_window
    width = settings.CREDITLEDGER_WEBHOOK_FANOUT_WINDOW_S
    now = time.time()
    window = int(now // width) if width > 0 else -2
    if window == _fanout_window and width > 0:
        return
    _fanout_window = window
    from webhooks.tasks import webhook_fanouts_dispatch

    try:
        countdown = (window + 1) * width - now if width > 0 else None
        webhook_fanouts_dispatch.apply_async(countdown=countdown, retry=False)
    except Exception:
        _fanout_window = -1
        logger.warning("webhook fan-out not requested; the outbox sweep will dispatch it", exc_info=True)


def fanouts_dispatch(*, limit: int = 500) -> int:
    """Dispatch the due fan-out messages (each claimed by the outbox); how many this call dispatched."""
    due = (
        OutboxMessage.objects.filter(
            topic=FANOUT_TOPIC, status=OutboxMessage.Status.PENDING, available_at__lte=timezone.now()
        )
        .order_by("id")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(outbox_message_dispatch(message_id=pk) for pk in list(due))


@outbox_handler(FANOUT_TOPIC)
def event_fanout(message: OutboxMessage) -> None:
    """A delivery per receiving endpoint (idempotent: one per endpoint and event), then their first attempts."""
    # A ledger entry's event gets its row (a copy) here, for its deliveries to point at.
    event = event_materialize(message.payload["event"])
    if event is None:  # purged past retention before it was dispatched
        return
    endpoints = list(endpoints_for_event(event).values_list("pk", flat=True))
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint_id=pk, event=event) for pk in endpoints], ignore_conflicts=True
    )
    for delivery_id in WebhookDelivery.objects.filter(
        event=event, endpoint_id__in=endpoints, status=WebhookDelivery.Status.PENDING, attempts=0
    ).values_list("pk", flat=True):
        delivery_enqueue(delivery_id)


def delivery_enqueue(delivery_id: int, *, countdown: float = 0) -> None:
    """Ask a worker for an attempt; a lost enqueue is picked up by `deliveries_sweep`."""
    from webhooks.tasks import webhook_deliver

    try:
        webhook_deliver.apply_async(args=[delivery_id], countdown=countdown or None, retry=False)
    except Exception:
        logger.warning("webhook delivery %s not enqueued; the sweep will attempt it", delivery_id, exc_info=True)


# --- attempts -----------------------------------------------------------------------


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next attempt after `attempts` failed ones (+-20% jitter); None: give up."""
    schedule = settings.CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S
    if attempts > len(schedule):
        return None
    return schedule[attempts - 1] * random.uniform(0.8, 1.2)


def signed_request(endpoint: WebhookEndpoint, event: Event, *, now=None) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers of a delivery of `event` to `endpoint`."""
    now = now or timezone.now()
    payload = json.dumps(event_body(event), separators=(",", ":"))
    signatures = [
        Webhook(secret).sign(msg_id=event.public_id, timestamp=now, data=payload)
        for secret in endpoint_signing_secrets(endpoint, now=now)
    ]
    headers = {
        "content-type": "application/json",
        "user-agent": "creditledger-webhooks/1",
        "webhook-id": event.public_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
    return payload.encode(), headers


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, str, int]:
    """POST; (status code or None, first 1 KB of the answer, error, latency in ms). Never raises."""
    started = time.monotonic()
    status, text, error = None, "", ""
    try:
        with httpx.Client(timeout=settings.CREDITLEDGER_WEBHOOK_TIMEOUT_S, follow_redirects=False) as client:
            with client.stream("POST", url, content=body, headers=headers) as response:
                status = response.status_code
                chunk = b""
                for part in response.iter_bytes():
                    chunk += part
                    if len(chunk) >= RESPONSE_KEEP_BYTES:
                        break
                text = chunk[:RESPONSE_KEEP_BYTES].decode("utf-8", "replace")
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    return status, text, error, int((time.monotonic() - started) * 1000)


def delivery_attempt(*, delivery_id: int) -> bool | None:
    """Claim and make one attempt of a due delivery; True delivered, False failed, None not due/claimed.

    Safe from any number of workers: the claim is a conditional UPDATE that
    only one caller matches. Runs outside any transaction and any lock.
    """
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "event", "event__account").get(pk=delivery_id)
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=WebhookDelivery.Status.FAILED, last_error="The endpoint is disabled."
        )
        return False
    try:
        url_check(endpoint.url)  # again: DNS may have changed since the endpoint was created
    except WebhookUrlRefused as refused:
        status, text, error, latency = None, "", f"Refused: {refused.message}", 0
    else:
        body, headers = signed_request(endpoint, delivery.event, now=now)
        status, text, error, latency = _post(endpoint.url, body, headers)
    WebhookAttempt.objects.create(
        delivery=delivery, attempted_at=now, status_code=status, latency_ms=latency, response_body=text, error=error
    )
    if status is not None and 200 <= status < 300:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=WebhookDelivery.Status.DELIVERED, delivered_at=timezone.now(), last_status_code=status, last_error=""
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_success_at=timezone.now(), failing_since=None)
        return True
    _attempt_failed(delivery, status=status, error=error or f"HTTP {status}")
    return False


def _attempt_failed(delivery: WebhookDelivery, *, status: int | None, error: str) -> None:
    delay = retry_delay(delivery.attempts)
    changes = {"last_status_code": status, "last_error": error[:1000]}
    if delay is None:
        changes["status"] = WebhookDelivery.Status.FAILED
    else:
        changes["next_attempt_at"] = timezone.now() + timedelta(seconds=delay)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**changes)
    endpoint_failure_record(endpoint=delivery.endpoint)
    if delay is not None:
        delivery_enqueue(delivery.pk, countdown=delay)


def endpoint_failure_record(*, endpoint: WebhookEndpoint, now=None) -> bool:
    """Note a failure; disable the endpoint (and alert staff) if it has failed without success too long.

    True if this call disabled it.
    """
    now = now or timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    cutoff = now - timedelta(days=settings.CREDITLEDGER_WEBHOOK_DISABLE_AFTER_DAYS)
    reason = (
        f"Disabled automatically: every delivery failed for {settings.CREDITLEDGER_WEBHOOK_DISABLE_AFTER_DAYS:g} days."
    )
    with transaction.atomic():
        disabled = WebhookEndpoint.objects.filter(
            Q(last_success_at__isnull=True) | Q(last_success_at__lt=F("failing_since")),
            pk=endpoint.pk,
            enabled=True,
            failing_since__lte=cutoff,
        ).update(enabled=False, disabled_at=now, disabled_reason=reason)
        if disabled:
            outbox_enqueue(
                topic="alert.webhook_endpoint_disabled",
                payload={
                    "message": f"Webhook endpoint {endpoint.public_id} disabled: failing since "
                    f"{endpoint.failing_since or now:%Y-%m-%d %H:%M} UTC.",
                    "level": "error",
                    "endpoint": endpoint.public_id,
                    "url": endpoint.url,
                },
            )
            _forget_after_commit()
    return bool(disabled)


def deliveries_sweep(*, limit: int = 200) -> int:
    """Attempt deliveries that are due (a lost enqueue, a dead worker's lease); how many were delivered."""
    return sum(1 for pk in deliveries_due(limit=limit) if delivery_attempt(delivery_id=pk))


def delivery_resend(*, delivery: WebhookDelivery) -> None:
    """Staff "resend": send the delivery again now (same webhook-id), whatever its status; attempts go on."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now()
        )
        transaction.on_commit(partial(delivery_enqueue, delivery.pk), robust=True)
