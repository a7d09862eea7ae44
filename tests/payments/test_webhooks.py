"""The webhook receiver: signatures, storing each event once, and processing it once."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from django.test import Client

from billing.models import CreditLot, LedgerEntry, Wallet
from payments.models import Purchase, StripeEvent
from payments.services.events import stripe_event_process
from tests.concurrency import run_concurrently
from tests.factories import PurchaseFactory
from tests.payments.conftest import post_event, sign
from tests.payments.helpers import checkout_completed, deliver, event, new_id


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_creditledger"


@pytest.mark.django_db
def test_a_signed_event_is_stored_and_acknowledged(client, webhook_secret):
    payload = checkout_completed(PurchaseFactory())
    response = post_event(client, payload)
    assert response.status_code == 200
    assert response.json() == {"received": True, "id": payload["id"], "duplicate": False}
    stored = StripeEvent.objects.get()
    assert (stored.stripe_id, stored.type, stored.status) == (payload["id"], "checkout.session.completed", "received")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "how",
    ["bad_signature", "stale_timestamp", "wrong_secret", "no_signature"],
)
def test_an_event_that_does_not_verify_is_400_and_nothing_is_stored(client, webhook_secret, how):
    body = json.dumps(checkout_completed(PurchaseFactory())).encode()
    headers = {
        "bad_signature": {"HTTP_STRIPE_SIGNATURE": sign(body)[:-4] + "0000"},
        "stale_timestamp": {"HTTP_STRIPE_SIGNATURE": sign(body, timestamp=int(time.time()) - 3600)},
        "wrong_secret": {"HTTP_STRIPE_SIGNATURE": sign(body, secret="whsec_someone_else")},
        "no_signature": {},
    }[how]
    response = client.post("/webhooks/stripe", data=body, content_type="application/json", **headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_a_tampered_body_is_400(client, webhook_secret):
    body = json.dumps(checkout_completed(PurchaseFactory())).encode()
    signature = sign(body)
    response = client.post(
        "/webhooks/stripe", data=body.replace(b"paid", b"PAID"), content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )  # fmt: skip
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_without_a_webhook_secret_every_event_is_refused(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = post_event(client, checkout_completed(PurchaseFactory()), secret="")
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_a_paid_checkout_grants_the_pack_as_a_purchased_lot(client, webhook_secret):
    purchase = PurchaseFactory()
    event_row = deliver(checkout_completed(purchase, payment_intent="pi_test_123"))
    purchase.refresh_from_db()
    assert event_row.status == "processed"
    assert purchase.status == "paid" and purchase.stripe_payment_intent_id == "pi_test_123"
    assert purchase.grant_entry.kind == LedgerEntry.Kind.GRANT and purchase.grant_entry.amount == Decimal("100.00")
    lot = CreditLot.objects.get(entry=purchase.grant_entry)
    assert lot.source == CreditLot.Source.PURCHASED and lot.remaining == Decimal("100.00")


@pytest.mark.django_db
def test_payment_intent_succeeded_after_checkout_completed_grants_nothing_more(webhook_secret):
    purchase = PurchaseFactory()
    deliver(checkout_completed(purchase, payment_intent="pi_test_9"))
    intent = {"id": "pi_test_9", "object": "payment_intent", "metadata": {"purchase": purchase.public_id},
              "latest_charge": "ch_test_9", "customer": "cus_1"}  # fmt: skip
    result = deliver(event("payment_intent.succeeded", intent))
    assert result.result.startswith("Already granted")
    assert LedgerEntry.objects.filter(account=purchase.account).count() == 1
    purchase.refresh_from_db()
    assert purchase.stripe_charge_id == "ch_test_9"


@pytest.mark.django_db
def test_an_unpaid_session_grants_nothing(webhook_secret):
    purchase = PurchaseFactory()
    payload = checkout_completed(purchase)
    payload["data"]["object"]["payment_status"] = "unpaid"
    assert deliver(payload).status == "ignored"
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_an_expired_checkout_session_fails_its_pending_purchase(webhook_secret):
    purchase = PurchaseFactory()
    payload = checkout_completed(purchase)
    payload["type"] = "checkout.session.expired"
    payload["data"]["object"].update(status="expired", payment_status="unpaid")
    assert deliver(payload).status == "processed"
    purchase.refresh_from_db()
    assert purchase.status == "failed" and "expired" in purchase.failure_reason


@pytest.mark.django_db
def test_an_expired_session_never_unpays_a_paid_purchase(webhook_secret):
    purchase = PurchaseFactory()
    deliver(checkout_completed(purchase))
    payload = checkout_completed(purchase)
    payload["type"] = "checkout.session.expired"
    deliver(payload)
    purchase.refresh_from_db()
    assert purchase.status == "paid"


@pytest.mark.django_db
def test_an_event_type_without_a_handler_is_ignored(webhook_secret):
    assert deliver(event("customer.created", {"id": new_id("cus")})).status == "ignored"


@pytest.mark.django_db(transaction=True)
def test_the_same_checkout_completed_five_times_concurrently_and_again_later_grants_once(webhook_secret):
    purchase = PurchaseFactory()
    payload = checkout_completed(purchase)

    def receive(_):
        return post_event(Client(), payload).status_code

    assert run_concurrently(receive, 5) == [200] * 5
    assert StripeEvent.objects.count() == 1
    stored = StripeEvent.objects.get()
    # Five workers process it at once (a redelivered task, the sweep, a reprocess...).
    results = run_concurrently(lambda _: stripe_event_process(event_id=stored.pk, force=True).status, 5)
    assert results == ["processed"] * 5
    assert post_event(Client(), payload).json()["duplicate"] is True  # and again, later
    stripe_event_process(event_id=stored.pk, force=True)
    assert LedgerEntry.objects.filter(account=purchase.account).count() == 1
    assert Wallet.objects.get(account=purchase.account).balance == Decimal("100.00")


@pytest.mark.django_db(transaction=True)
def test_five_distinct_events_for_one_payment_intent_concurrently_grant_once(webhook_secret):
    purchase = PurchaseFactory()
    payloads = [checkout_completed(purchase, payment_intent="pi_test_same") for _ in range(5)]
    results = run_concurrently(lambda i: deliver(payloads[i]).status, 5)
    assert results == ["processed"] * 5
    assert StripeEvent.objects.count() == 5
    assert LedgerEntry.objects.filter(account=purchase.account).count() == 1
    assert Purchase.objects.get().grant_entry is not None
