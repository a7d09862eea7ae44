"""Failed Stripe events are retried by the sweep with exponential backoff, then given up on loudly."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from payments.models import StripeEvent
from payments.services import events as stripe_events
from payments.services.events import retry_delay, stripe_event_process
from payments.tasks import stripe_events_sweep
from tests.factories import PurchaseFactory
from tests.payments.helpers import charge_refunded, checkout_completed, deliver, new_id
from tests.payments.stripe_objects import payment_intent
from tests.sdk.server import free_port
from tests.sentry_capture import sentry_events  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_down(settings, stripe_on):
    """Stripe unreachable: nothing listens on the port (connection refused)."""
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"


def _refund_of_an_unknown_charge() -> dict:
    """A refund naming a payment intent we have not stored: handling it asks Stripe for the intent."""
    purchase = PurchaseFactory()
    payload = charge_refunded(purchase, amount_refunded=purchase.amount_minor)
    payload["data"]["object"]["payment_intent"] = new_id("pi")
    return payload


def test_the_backoff_doubles_from_two_minutes_and_stops_growing_at_six_hours():
    delays = [retry_delay(n) for n in range(1, stripe_events.FAIL_MAX_ATTEMPTS)]
    assert [int(d.total_seconds() // 60) for d in delays] == [2, 4, 8, 16, 32, 64, 128, 256, 360]
    assert retry_delay(50) == timedelta(hours=6)


def test_a_failed_event_gets_a_retry_time_two_minutes_on_then_four(stripe_down):
    stored = deliver(_refund_of_an_unknown_charge())
    assert (stored.status, stored.failures) == ("failed", 1)
    assert stored.retry_at - stored.processed_at == timedelta(minutes=2)
    with time_machine.travel(stored.retry_at + timedelta(seconds=1)):
        stripe_events_sweep()
    stored.refresh_from_db()
    assert (stored.status, stored.failures) == ("failed", 2)
    assert stored.retry_at - stored.processed_at == timedelta(minutes=4)


def test_the_sweep_leaves_a_failed_event_alone_until_its_retry_time(stripe_down):
    stored = deliver(_refund_of_an_unknown_charge())
    with time_machine.travel(stored.retry_at - timedelta(seconds=5)):
        stripe_events_sweep()
    stored.refresh_from_db()
    assert (stored.attempts, stored.failures) == (1, 1)


def test_a_failed_event_is_applied_by_the_sweep_once_stripe_answers_again(settings, stripe_on):
    purchase = PurchaseFactory()
    payload = charge_refunded(purchase, amount_refunded=purchase.amount_minor)
    payload["data"]["object"]["payment_intent"] = payment_intent(metadata={"purchase": purchase.public_id})
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # Stripe unreachable
    stored = deliver(payload)
    assert stored.status == "failed" and "APIConnectionError" in stored.result

    settings.STRIPE_API_BASE = stripe_on  # Stripe is back
    with time_machine.travel(stored.retry_at + timedelta(seconds=1)):
        stripe_events_sweep()
    stored.refresh_from_db()
    # Found through the payment intent's metadata; the purchase is not paid yet, so it waits.
    assert stored.status == "received" and stored.retry_at is None and "Waiting" in stored.result


def test_the_tenth_failure_gives_up_and_the_sweep_no_longer_retries_it(stripe_down):
    stored = deliver(_refund_of_an_unknown_charge())
    for _ in range(stripe_events.FAIL_MAX_ATTEMPTS - 1):
        stored = stripe_event_process(event_id=stored.pk)
    assert (stored.status, stored.failures, stored.retry_at) == ("failed", 10, None)
    assert stored.result.startswith("Gave up after 10 failures")
    with time_machine.travel(timedelta(days=2)):
        assert stripe_events_sweep() == 0
    stored.refresh_from_db()
    assert stored.attempts == 10


def test_giving_up_tells_sentry_once_committed(stripe_down, sentry_events, django_capture_on_commit_callbacks):  # noqa: F811
    stored = deliver(_refund_of_an_unknown_charge())
    StripeEvent.objects.filter(pk=stored.pk).update(failures=stripe_events.FAIL_MAX_ATTEMPTS - 1)
    with django_capture_on_commit_callbacks(execute=True):
        stripe_event_process(event_id=stored.pk)
    messages = [e.get("message") or (e.get("logentry") or {}).get("message", "") for e in sentry_events]
    assert any(stored.stripe_id in m and "Gave up after 10 failures" in m for m in messages)


def test_an_event_that_waited_too_long_is_not_retried_by_the_sweep():
    purchase = PurchaseFactory(stripe_payment_intent_id="pi_never_paid")
    early = deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    for _ in range(stripe_events.DEFER_MAX_ATTEMPTS - 1):
        early = stripe_event_process(event_id=early.pk)
    assert early.status == "failed" and early.retry_at is None and early.result.startswith("Gave up")
    with time_machine.travel(timedelta(days=2)):
        assert stripe_events_sweep() == 0
    early.refresh_from_db()
    assert early.attempts == stripe_events.DEFER_MAX_ATTEMPTS


def test_a_retry_already_run_by_another_worker_is_not_run_again(stripe_down):
    stored = deliver(_refund_of_an_unknown_charge())
    with time_machine.travel(stored.retry_at + timedelta(seconds=1)):
        stripe_events_sweep()
        # A second sweep that had listed the event before the first one ran it.
        again = stripe_event_process(event_id=stored.pk, only_if_due=True)
    assert (again.attempts, again.failures) == (2, 2)


def test_the_admin_lists_given_up_events_and_reprocess_still_runs_them(admin_client, settings, stripe_down):
    purchase = PurchaseFactory()
    payload = checkout_completed(purchase)
    stored = deliver(_refund_of_an_unknown_charge())
    StripeEvent.objects.filter(pk=stored.pk).update(failures=stripe_events.FAIL_MAX_ATTEMPTS, retry_at=None)
    deliver(payload)
    page = admin_client.get(reverse("admin:payments_stripeevent_changelist") + "?retry=gave_up").content.decode()
    assert stored.stripe_id in page and payload["id"] not in page and "gave up" in page

    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    admin_client.post(
        reverse("admin:payments_stripeevent_changelist"), {"action": "reprocess", "_selected_action": [stored.pk]}
    )
    stored.refresh_from_db()
    assert stored.attempts == 2  # run by hand even though the sweep gave up on it
