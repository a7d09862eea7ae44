"""The outbox: committed with the change, dispatched after commit, never lost, retried, delivered once per claim."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from billing.models import OutboxMessage
from billing.outbox import (
    outbox_dispatch_pending,
    outbox_enqueue,
    outbox_handler,
    outbox_message_dispatch,
    outbox_message_retry,
)
from tests.concurrency import run_concurrently
from tests.sentry_capture import sentry_events  # noqa: F401 - fixture

delivered: list[dict] = []
failures_left = {"count": 0}


@outbox_handler("test.*")
def record_delivery(message: OutboxMessage) -> None:
    if failures_left["count"] > 0:
        failures_left["count"] -= 1
        raise ConnectionError("receiver down")
    delivered.append(message.payload)


@pytest.fixture(autouse=True)
def _reset():
    delivered.clear()
    failures_left["count"] = 0
    yield
    delivered.clear()
    failures_left["count"] = 0


def make_due(message: OutboxMessage) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db
def test_a_message_rolled_back_with_its_change_is_never_written():
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_enqueue(topic="test.webhook", payload={"n": 1})
        raise RuntimeError("the change failed")
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db
def test_a_committed_message_whose_enqueue_was_lost_is_dispatched_by_the_sweep():
    # In this (non-transactional) test the on_commit enqueue never runs: the
    # same state as a process that died right after commit.
    message = outbox_enqueue(topic="test.webhook", payload={"n": 1})
    assert outbox_dispatch_pending() == 1
    message.refresh_from_db()
    assert delivered == [{"n": 1}]
    assert message.status == "dispatched" and message.attempts == 1 and message.dispatched_at is not None
    assert outbox_dispatch_pending() == 0


@pytest.mark.django_db
def test_dispatching_twice_delivers_once():
    message = outbox_enqueue(topic="test.webhook", payload={"n": 2})
    assert outbox_message_dispatch(message_id=message.pk) is True
    assert outbox_message_dispatch(message_id=message.pk) is False
    assert delivered == [{"n": 2}]


@pytest.mark.django_db
def test_a_failing_handler_is_retried_with_backoff_then_succeeds():
    failures_left["count"] = 1
    message = outbox_enqueue(topic="test.webhook", payload={"n": 3})
    assert outbox_message_dispatch(message_id=message.pk) is False
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 1
    assert "receiver down" in message.last_error
    assert message.available_at > timezone.now()  # backing off: the sweep leaves it alone for now
    assert outbox_dispatch_pending() == 0
    make_due(message)
    assert outbox_dispatch_pending() == 1
    message.refresh_from_db()
    assert message.status == "dispatched" and message.attempts == 2 and message.last_error == ""


@pytest.mark.django_db
@override_settings(CREDITLEDGER_OUTBOX_MAX_ATTEMPTS=2)
def test_a_message_that_keeps_failing_is_marked_failed_and_reported(sentry_events):  # noqa: F811
    failures_left["count"] = 5
    message = outbox_enqueue(topic="test.webhook", payload={"n": 4})
    outbox_message_dispatch(message_id=message.pk)
    make_due(message)
    outbox_message_dispatch(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == "failed" and message.attempts == 2
    assert any("gave up" in (event.get("message") or "") for event in sentry_events)
    make_due(message)
    assert outbox_dispatch_pending() == 0


@pytest.mark.django_db
def test_staff_retry_makes_a_failed_message_due_again():
    message = outbox_enqueue(topic="test.webhook", payload={"n": 5})
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed", attempts=10)
    outbox_message_retry(message=message)
    assert outbox_dispatch_pending() == 1
    assert delivered == [{"n": 5}]


@pytest.mark.django_db
def test_an_unknown_topic_is_refused_at_enqueue():
    with pytest.raises(ValueError, match="No outbox handler"):
        outbox_enqueue(topic="nobody.listens", payload={})


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_deliver_a_message_once():
    message = outbox_enqueue(topic="test.webhook", payload={"n": 6})
    results = run_concurrently(lambda i: outbox_message_dispatch(message_id=message.pk), 8)
    assert results.count(True) == 1, results
    assert delivered == [{"n": 6}]


@pytest.mark.django_db
def test_an_alert_is_sent_to_sentry(sentry_events):  # noqa: F811
    message = outbox_enqueue(
        topic="alert.reconciliation_drift", payload={"message": "drift!", "level": "error", "run_id": 7}
    )
    assert outbox_message_dispatch(message_id=message.pk)
    event = sentry_events[-1]
    assert event["message"] == "drift!" and event["level"] == "error"
    assert event["tags"]["alert"] == "alert.reconciliation_drift"
    assert event["contexts"]["alert"]["run_id"] == 7
