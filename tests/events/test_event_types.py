"""Each feature records its event type in its own transaction."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing.core import Actor
from billing.reconciliation import reconciliation_run
from billing.services import grant_create, grants_expire_due, holds_expire_due
from events.models import FeedEvent
from events.types import EVENT_TYPES, OFF_BY_DEFAULT
from subscriptions.services import subscription_create, subscription_renew, subscription_status_set
from tests.factories import AccountFactory, PlanFactory, PriceFactory, default_credit_type, funded_account, hold_for

pytestmark = pytest.mark.django_db


def test_an_expired_hold_records_hold_expired():
    account = funded_account("10.00")
    hold = hold_for(account, "2.00")
    holds_expire_due(now=hold.expires_at + timedelta(seconds=1))
    event = FeedEvent.objects.get(type="hold.expired", account=account)
    assert event.data["id"] == hold.public_id and event.data["status"] == "expired"


def test_an_expired_grant_records_lot_expired():
    account = AccountFactory()
    now = timezone.now()
    grant_create(
        account=account,
        credit_type=default_credit_type(),
        amount=Decimal("5"),
        actor=Actor.system(),
        expires_at=now + timedelta(days=1),
    )
    grants_expire_due(now=now + timedelta(days=1, minutes=1))
    event = FeedEvent.objects.get(type="lot.expired", account=account)
    assert event.data["kind"] == "expiry" and event.data["amount"] == "-5.00"


def test_a_renewal_and_a_status_change_record_subscription_updated():
    account = AccountFactory()
    subscription = subscription_create(
        account=account, plan=PlanFactory(), period_start=timezone.now() - timedelta(days=40)
    )
    subscription_renew(subscription=subscription, now=timezone.now())
    subscription_status_set(subscription=subscription, status="canceled")
    events = list(FeedEvent.objects.filter(type="subscription.updated", account=account).order_by("id"))
    assert [e.data["status"] for e in events] == ["active", "canceled"]
    assert events[0].data["plan"] == subscription.plan.code


def test_reconciliation_drift_records_reconciliation_drift():
    account = funded_account("20.00")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_wallet SET balance = balance + 5 WHERE account_id = %s", [account.pk])
    run = reconciliation_run()
    event = FeedEvent.objects.get(type="reconciliation.drift")
    assert event.account is None and event.data["id"] == run.pk and event.data["discrepancy_count"] == 1


def test_a_clean_reconciliation_records_nothing():
    funded_account("20.00")
    reconciliation_run()
    assert not FeedEvent.objects.filter(type="reconciliation.drift").exists()


def test_a_paid_key_settled_at_zero_records_pricing_anomaly(api_client):
    from tests.factories import service_key

    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    account = funded_account("10.00")
    PriceFactory(key="openai/gpt-4o")
    response = api_client.post(
        "/api/v1/charges",
        {"account": account.public_id, "key": "openai/gpt-4o", "usage": {"input_tokens": 0}},
        format="json",
    )
    assert response.status_code == 200
    event = FeedEvent.objects.get(type="pricing.anomaly", account=account)
    assert event.data == response.json()


def test_only_charge_declined_is_off_by_default():
    assert OFF_BY_DEFAULT == {"charge.declined"} and OFF_BY_DEFAULT <= set(EVENT_TYPES)
