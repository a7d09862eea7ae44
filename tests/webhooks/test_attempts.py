"""One attempt at a time, in-process against a real receiver: the URL checked again, signatures, failures, resend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from billing.models import OutboxMessage
from events.models import entry_event_public_id
from events.services import event_materialize
from tests.factories import charge_for, funded_account
from tests.webhooks.receiver import Receiver
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.secrets import secret_decrypt
from webhooks.services import (
    delivery_attempt,
    delivery_resend,
    endpoint_create,
    endpoint_secret_rotate,
    retry_delay,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def delivery_to(url: str, receiver: Receiver | None = None) -> WebhookDelivery:
    endpoint, secret = endpoint_create(url=url, event_types=["charge.created"])
    if receiver is not None:
        receiver.secrets.append(secret)
    account = funded_account("10.00")
    entry = charge_for(account, "1.00")
    event = event_materialize(entry_event_public_id(entry.public_id))
    return WebhookDelivery.objects.create(endpoint=endpoint, event=event)


def test_a_delivery_is_signed_and_its_attempt_recorded(receiver):
    delivery = delivery_to(receiver.url, receiver)
    assert delivery_attempt(delivery_id=delivery.pk) is True
    [payload] = receiver.verified
    assert payload["id"] == delivery.event.public_id and payload["type"] == "charge.created"
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code == 200 and attempt.response_body == "ok" and attempt.latency_ms >= 0
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1


def test_an_attempt_already_claimed_or_done_is_not_made_twice(receiver):
    delivery = delivery_to(receiver.url, receiver)
    assert delivery_attempt(delivery_id=delivery.pk) is True
    assert delivery_attempt(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "169.254.169.254"])
def test_an_address_disallowed_since_creation_is_refused_at_delivery(receiver, settings, host):
    url = receiver.url.replace("127.0.0.1", host).replace("http://", "https://")
    delivery = delivery_to(url)  # created while private addresses were allowed
    settings.CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE = False
    assert delivery_attempt(delivery_id=delivery.pk) is False
    [attempt] = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.status_code is None and attempt.error.startswith("Refused:") and host in attempt.error
    assert receiver.requests == []
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at > timezone.now()  # retried later


def test_during_the_grace_period_a_delivery_verifies_with_either_secret(receiver):
    delivery = delivery_to(receiver.url)
    old_secret = secret_decrypt(delivery.endpoint.secret_encrypted)  # the creation secret
    new_secret = endpoint_secret_rotate(endpoint=delivery.endpoint, grace_hours=1)
    receiver.secrets.extend([old_secret, new_secret])
    assert delivery_attempt(delivery_id=delivery.pk) is True
    assert receiver.verified_with == [{old_secret, new_secret}]  # each secret alone verifies it


def test_after_the_grace_period_only_the_new_secret_verifies(receiver):
    delivery = delivery_to(receiver.url)
    old_secret = secret_decrypt(delivery.endpoint.secret_encrypted)
    new_secret = endpoint_secret_rotate(endpoint=delivery.endpoint, grace_hours=1)
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    receiver.secrets.extend([old_secret, new_secret])
    assert delivery_attempt(delivery_id=delivery.pk) is True
    assert receiver.verified_with == [{new_secret}]


def test_a_failed_attempt_is_scheduled_by_the_retry_schedule(settings):
    settings.CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S = [60.0, 600.0]
    closed = Receiver()  # never started
    delivery = delivery_to(closed.url)
    before = timezone.now()
    assert delivery_attempt(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert before + timedelta(seconds=47) <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=73)
    assert delivery.last_status_code is None and "Connect" in delivery.last_error


def test_after_the_last_retry_the_delivery_fails(settings):
    settings.CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S = [0.0]
    delivery = delivery_to(Receiver().url)
    assert delivery_attempt(delivery_id=delivery.pk) is False
    assert delivery_attempt(delivery_id=delivery.pk) is False
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2


def test_the_default_schedule_spans_about_three_days():
    total = sum(settings.CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S)
    assert 2.5 * 86400 <= total <= 3.5 * 86400
    assert 0.8 * 5 <= retry_delay(1) <= 1.2 * 5
    assert retry_delay(len(settings.CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S) + 1) is None


def test_an_endpoint_failing_too_long_without_success_is_disabled_and_staff_alerted(settings):
    settings.CREDITLEDGER_WEBHOOK_DISABLE_AFTER_DAYS = 5
    delivery = delivery_to(Receiver().url)
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(failing_since=timezone.now() - timedelta(days=6))
    assert delivery_attempt(delivery_id=delivery.pk) is False
    endpoint = WebhookEndpoint.objects.get(pk=delivery.endpoint_id)
    assert not endpoint.enabled and "Disabled automatically" in endpoint.disabled_reason
    alert = OutboxMessage.objects.get(topic="alert.webhook_endpoint_disabled")
    assert alert.payload["endpoint"] == endpoint.public_id


def test_a_recent_failure_does_not_disable_the_endpoint():
    delivery = delivery_to(Receiver().url)
    assert delivery_attempt(delivery_id=delivery.pk) is False
    endpoint = WebhookEndpoint.objects.get(pk=delivery.endpoint_id)
    assert endpoint.enabled and endpoint.failing_since is not None


def test_a_success_clears_the_failure_record(receiver):
    delivery = delivery_to(receiver.url, receiver)
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(failing_since=timezone.now() - timedelta(days=1))
    assert delivery_attempt(delivery_id=delivery.pk) is True
    endpoint = WebhookEndpoint.objects.get(pk=delivery.endpoint_id)
    assert endpoint.failing_since is None and endpoint.last_success_at is not None


def test_resend_sends_a_delivered_event_again_with_the_same_webhook_id(receiver):
    delivery = delivery_to(receiver.url, receiver)
    assert delivery_attempt(delivery_id=delivery.pk) is True
    delivery_resend(delivery=delivery)
    assert delivery_attempt(delivery_id=delivery.pk) is True
    ids = [headers["webhook-id"] for headers, _ in receiver.requests]
    assert ids == [delivery.event.public_id] * 2
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 2


def test_a_disabled_endpoint_gets_nothing(receiver):
    delivery = delivery_to(receiver.url, receiver)
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(enabled=False)
    assert delivery_attempt(delivery_id=delivery.pk) is False
    assert receiver.requests == []


def test_due_fan_outs_become_one_delivery_per_receiving_endpoint():
    from webhooks.services import fanouts_dispatch

    receiving, _ = endpoint_create(url="http://127.0.0.1:9/a", event_types=["charge.created"])
    endpoint_create(url="http://127.0.0.1:9/b", event_types=["hold.created"])
    account = funded_account("10.00")
    entry = charge_for(account, "1.00")
    assert fanouts_dispatch() == 1
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.endpoint == receiving and delivery.event.data["id"] == entry.public_id
    assert fanouts_dispatch() == 0  # dispatched once
