"""Deliveries end to end: a real Celery worker POSTs to a real receiver on 127.0.0.1, which verifies each one.

The worker gets a retry schedule of seconds (CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S)
so that the retry tests are quick; everything else is as in production:
the event is committed with its change, the outbox dispatches its fan-out,
and each attempt is a task.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.db import transaction

from billing.alerts import wallet_alerts_set
from billing.core import Actor
from billing.services import grant_create
from events.models import FeedEvent
from tests.concurrency import run_concurrently
from tests.factories import charge_for, default_credit_type, funded_account
from tests.processes import celery_worker, child_database_url
from tests.webhooks.receiver import Receiver, free_port, wait_until
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_url = child_database_url()
    retries_quick = {
        "CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S": "1,1,1,1,1,1,1,1,1,1",
        "CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE": "true",
        "CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S": "0",
    }
    pool = ("--pool=threads", "--concurrency=4")
    with celery_worker("webhooks", database_url=database_url, pool=pool, env=retries_quick) as log_path:
        yield log_path


def settled(worker_log: str, condition, what: str) -> None:
    try:
        wait_until(condition, timeout=60, what=what)
    except AssertionError:
        with open(worker_log) as log:
            pytest.fail(f"timed out waiting for {what}; the worker's log:\n{log.read()[-4000:]}")


def quiet(seconds: float = 1.5) -> None:
    """Give a duplicate delivery, if there were one, the time to arrive."""
    time.sleep(seconds)


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def subscribe(receiver: Receiver, *types: str):
    endpoint, secret = endpoint_create(url=receiver.url, event_types=list(types))
    receiver.secrets.append(secret)
    return endpoint


def with_threshold(amount: str, threshold: str):
    account = funded_account(amount)
    wallet_alerts_set(account=account, credit_type=default_credit_type(), low_balance=threshold)
    return account


def test_a_charge_crossing_the_threshold_delivers_exactly_one_balance_low(worker, receiver):
    subscribe(receiver, "balance.low")
    account = with_threshold("20.00", "10.00")
    charge_for(account, "12.00")
    charge_for(account, "1.00")
    settled(worker, lambda: len(receiver.of_type("balance.low")) >= 1, "balance.low")
    quiet()
    [payload] = receiver.of_type("balance.low")
    assert payload["account"] == account.public_id and payload["data"]["available"] == "8.00"
    assert not receiver.refused


def test_landing_exactly_on_the_threshold_delivers_balance_low(worker, receiver):
    subscribe(receiver, "balance.low")
    account = with_threshold("20.00", "10.00")
    charge_for(account, "10.00")
    settled(worker, lambda: len(receiver.of_type("balance.low")) == 1, "balance.low")
    assert receiver.of_type("balance.low")[0]["data"]["available"] == "10.00"


def test_rising_above_and_crossing_again_delivers_a_second_balance_low(worker, receiver):
    subscribe(receiver, "balance.low")
    account = with_threshold("20.00", "10.00")
    charge_for(account, "15.00")
    grant_create(account=account, credit_type=default_credit_type(), amount="20.00", reason="top-up", actor=Actor())
    charge_for(account, "20.00")
    settled(worker, lambda: len(receiver.of_type("balance.low")) >= 2, "two balance.low")
    quiet()
    payloads = receiver.of_type("balance.low")
    assert len(payloads) == 2 and payloads[0]["id"] != payloads[1]["id"]


def test_fifty_concurrent_charges_across_the_threshold_deliver_one_balance_low(worker, receiver):
    subscribe(receiver, "balance.low")
    account = with_threshold("60.00", "35.00")
    results = run_concurrently(lambda _: charge_for(account, "1.00"), 50)
    assert not [r for r in results if isinstance(r, Exception)]
    settled(worker, lambda: len(receiver.of_type("balance.low")) >= 1, "balance.low")
    quiet()
    assert len(receiver.of_type("balance.low")) == 1


def test_a_receiver_down_for_the_first_attempts_gets_the_event_once_with_its_original_id(worker):
    port = free_port()
    down = Receiver(port=port)  # not started: connections are refused
    endpoint = subscribe(down, "charge.created")
    account = funded_account("10.00")
    entry = charge_for(account, "1.00")
    event = FeedEvent.objects.get(type="charge.created", entry_public_id=entry.public_id)
    settled(
        worker,
        lambda: WebhookAttempt.objects.filter(delivery__endpoint=endpoint).count() >= 2,
        "two failed attempts",
    )
    up = Receiver(port=port, secrets=down.secrets).start()
    try:
        settled(
            worker,
            lambda: WebhookDelivery.objects.filter(endpoint=endpoint, status="delivered").exists(),
            "the delivery",
        )
        quiet()
        assert [headers["webhook-id"] for headers, _ in up.requests] == [event.public_id]
        assert up.verified[0]["id"] == event.public_id
    finally:
        up.stop()
    attempts = list(WebhookAttempt.objects.filter(delivery__endpoint=endpoint).order_by("id"))
    assert len(attempts) >= 3
    assert all(a.status_code is None and "Connect" in a.error for a in attempts[:-1])
    assert attempts[-1].status_code == 200 and attempts[-1].response_body == "ok"
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.attempts == len(attempts)


def test_a_failing_answer_is_retried_and_recorded(worker):
    receiver = Receiver(statuses=[500, 503]).start()
    try:
        endpoint = subscribe(receiver, "grant.created")
        funded_account("10.00")
        settled(
            worker,
            lambda: WebhookDelivery.objects.filter(endpoint=endpoint, status="delivered").exists(),
            "the delivery",
        )
    finally:
        receiver.stop()
    codes = list(
        WebhookAttempt.objects.filter(delivery__endpoint=endpoint).order_by("id").values_list("status_code", flat=True)
    )
    assert codes == [500, 503, 200]
    assert WebhookAttempt.objects.filter(delivery__endpoint=endpoint, status_code=500).get().response_body == "not now"


def test_a_rolled_back_transaction_delivers_nothing(worker, receiver):
    subscribe(receiver, "charge.created")
    account = funded_account("10.00")
    with pytest.raises(RuntimeError), transaction.atomic():
        charge_for(account, "3.00")
        raise RuntimeError("the caller fails after the charge")
    committed = charge_for(account, "1.00")
    settled(worker, lambda: len(receiver.of_type("charge.created")) >= 1, "the committed charge")
    quiet()
    assert [p["data"]["id"] for p in receiver.of_type("charge.created")] == [committed.public_id]
    assert FeedEvent.objects.filter(type="charge.created").count() == 1


def test_an_endpoint_created_later_does_not_receive_earlier_events(worker, receiver):
    funded_account("10.00")
    subscribe(receiver, "grant.created")
    later = funded_account("5.00")
    settled(worker, lambda: len(receiver.of_type("grant.created")) >= 1, "the later grant")
    quiet()
    assert [p["account"] for p in receiver.of_type("grant.created")] == [later.public_id]


def test_charge_declined_is_delivered_only_to_endpoints_that_name_it(worker, receiver):
    everything = Receiver().start()
    try:
        subscribe(everything)  # no list: every type but the off-by-default ones
        subscribe(receiver, "charge.declined")
        account = funded_account("1.00")
        with pytest.raises(Exception, match="Insufficient"):
            charge_for(account, "5.00")
        settled(worker, lambda: len(receiver.of_type("charge.declined")) == 1, "charge.declined")
        settled(worker, lambda: len(everything.of_type("grant.created")) == 1, "grant.created")
        quiet()
        assert everything.of_type("charge.declined") == []
    finally:
        everything.stop()


def test_decimal_amounts_arrive_at_the_credit_types_scale(worker, receiver):
    subscribe(receiver, "charge.created")
    account = funded_account("10.00")
    charge_for(account, Decimal("2.5"))
    settled(worker, lambda: len(receiver.of_type("charge.created")) == 1, "charge.created")
    assert receiver.of_type("charge.created")[0]["data"]["amount"] == "-2.50"
