"""Transactional outbox: side effects that must not be lost.

`outbox_enqueue` is called inside the transaction of the change that causes
the side effect (an alert, a webhook, a follow-up task), so the message is
committed with the change or not at all. After commit, a Celery task is asked
to dispatch it; if that enqueue is lost (the process dies right after commit,
the broker is down) the periodic sweep `outbox_dispatch_pending` finds the row
still pending and dispatches it. Nothing is lost between commit and enqueue.

Dispatch claims a row with one conditional UPDATE that bumps `attempts` and
pushes `available_at` forward by a lease; only the caller whose UPDATE
matched runs the handler. A failing handler leaves the row pending with
exponential backoff until CREDITLEDGER_OUTBOX_MAX_ATTEMPTS, then marks it
`failed` and tells Sentry. Delivery is at least once (a crash after the
handler ran but before the row is marked re-runs it), so handlers must be
idempotent: the message id is the natural dedupe key.

Handlers are registered per topic with `@outbox_handler("alert.*")` (exact
topic, or a prefix ending in `.*`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import sentry_sdk
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import OutboxMessage
from config import metrics
from config.rows import row_insert

logger = logging.getLogger(__name__)

Handler = Callable[[OutboxMessage], None]
_handlers: dict[str, Handler] = {}


def outbox_handler(topic: str) -> Callable[[Handler], Handler]:
    """Register the function that delivers messages of `topic` (or `prefix.*`)."""

    def register(fn: Handler) -> Handler:
        _handlers[topic] = fn
        return fn

    return register


def handler_for(topic: str) -> Handler | None:
    if topic in _handlers:
        return _handlers[topic]
    parts = topic.split(".")
    for i in range(len(parts) - 1, 0, -1):
        handler = _handlers.get(".".join(parts[:i]) + ".*")
        if handler is not None:
            return handler
    return None


# After a failed enqueue this process stops trying for a while: a dead broker
# costs seconds per attempt (client retries), and the message is safe in the
# table anyway; the sweep dispatches it once the broker is back.
_BROKER_PAUSE_S = 30.0
_broker_paused_until = 0.0


def _enqueue_dispatch(message_id: int) -> None:
    """After commit: ask a worker to dispatch now. Failure is fine: the sweep catches it."""
    global _broker_paused_until
    if time.monotonic() < _broker_paused_until:
        return
    try:
        from billing.tasks import outbox_dispatch

        outbox_dispatch.apply_async(args=[message_id], retry=False)
    except Exception:
        _broker_paused_until = time.monotonic() + _BROKER_PAUSE_S
        logger.warning("outbox message %s not enqueued; the sweep will dispatch it", message_id, exc_info=True)


def outbox_message_build(*, topic: str, payload: dict) -> OutboxMessage:
    """An unsaved message for `topic`, for a caller that writes it in its own statement (an event's hook)."""
    if handler_for(topic) is None:
        raise ValueError(f"No outbox handler is registered for topic {topic!r}.")
    return OutboxMessage(topic=topic, payload=payload, available_at=timezone.now())


def outbox_enqueue(*, topic: str, payload: dict, dispatch: bool = True) -> OutboxMessage:
    """Write a message in the caller's transaction; dispatch is requested after commit.

    `dispatch=False` leaves the request to the caller (which may batch many
    messages into one request, as webhooks' fan-out does); the sweep still
    dispatches anything left pending.
    """
    # One prepared INSERT (config.rows).
    message = outbox_message_build(topic=topic, payload=payload)
    row_insert(message)
    if dispatch:
        transaction.on_commit(partial(_enqueue_dispatch, message.pk), robust=True)
    return message


def _backoff(attempts: int) -> timedelta:
    base = settings.CREDITLEDGER_OUTBOX_BACKOFF_S
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def outbox_message_dispatch(*, message_id: int) -> bool:
    """Claim and deliver one message; True if it was delivered by this call.

    Safe to call any number of times, from any number of workers: a message
    already dispatched, failed, backing off or claimed by another dispatcher
    is left alone.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.CREDITLEDGER_OUTBOX_LEASE_S)
    claimed = OutboxMessage.objects.filter(
        pk=message_id, status=OutboxMessage.Status.PENDING, available_at__lte=now
    ).update(attempts=F("attempts") + 1, available_at=now + lease)
    if not claimed:
        return False
    message = OutboxMessage.objects.get(pk=message_id)
    handler = handler_for(message.topic)
    try:
        if handler is None:
            raise LookupError(f"No outbox handler for topic {message.topic!r}.")
        handler(message)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:5000]
        if message.attempts >= settings.CREDITLEDGER_OUTBOX_MAX_ATTEMPTS:
            OutboxMessage.objects.filter(pk=message_id).update(status=OutboxMessage.Status.FAILED, last_error=error)
            metrics.OUTBOX_DISPATCH.labels(result="failed").inc()
            logger.error(
                "outbox message %s (%s) gave up after %s attempts", message_id, message.topic, message.attempts
            )
            sentry_sdk.capture_message(
                f"Outbox message gave up after {message.attempts} attempts: {message.topic}", level="error"
            )
        else:
            OutboxMessage.objects.filter(pk=message_id).update(
                last_error=error, available_at=timezone.now() + _backoff(message.attempts)
            )
            metrics.OUTBOX_DISPATCH.labels(result="retry").inc()
            logger.warning("outbox message %s (%s) failed, will retry: %s", message_id, message.topic, error)
        return False
    OutboxMessage.objects.filter(pk=message_id).update(
        status=OutboxMessage.Status.DISPATCHED, dispatched_at=timezone.now(), last_error=""
    )
    metrics.OUTBOX_DISPATCH.labels(result="dispatched").inc()
    return True


def outbox_dispatch_pending(*, limit: int = 200) -> int:
    """The sweep: dispatch messages that are due (never enqueued, or backing off). Returns how many."""
    due = (
        OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING, available_at__lte=timezone.now())
        .order_by("available_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(outbox_message_dispatch(message_id=pk) for pk in list(due))


def outbox_message_retry(*, message: OutboxMessage) -> None:
    """Staff "retry now": make a failed or backing-off message due again and request dispatch."""
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).exclude(status=OutboxMessage.Status.DISPATCHED).update(
            status=OutboxMessage.Status.PENDING, available_at=timezone.now()
        )
        transaction.on_commit(partial(_enqueue_dispatch, message.pk), robust=True)


# --- handlers -----------------------------------------------------------------


@outbox_handler("alert.*")
def deliver_alert(message: OutboxMessage) -> None:
    """An operational alert: a log line and a Sentry event (counts and ids only, no balances)."""
    payload = message.payload or {}
    text = str(payload.get("message") or message.topic)
    level = payload.get("level", "error")
    logger.log(logging.ERROR if level == "error" else logging.WARNING, "alert %s: %s", message.topic, text)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("alert", message.topic)
        scope.set_tag("outbox_message", message.pk)
        scope.set_context("alert", {k: v for k, v in payload.items() if k not in ("message", "level")})
        # Fingerprint per topic: one Sentry issue per kind of alert, not per run.
        scope.fingerprint = ["outbox-alert", message.topic]
        sentry_sdk.capture_message(text, level=level)


@outbox_handler("task.enqueue")
def deliver_task(message: OutboxMessage) -> None:
    """A follow-up Celery task: payload {"task": name, "args": [...], "kwargs": {...}}."""
    from config.celery import app

    payload = message.payload
    app.send_task(
        payload["task"],
        args=payload.get("args") or [],
        kwargs=payload.get("kwargs") or {},
        retry=False,
        headers={"outbox_message": message.pk},
    )
