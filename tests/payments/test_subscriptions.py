"""Stripe subscriptions mirrored locally: status and period follow Stripe's, allowances granted once, in any order."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from subscriptions.models import AllowanceGrant, Subscription
from tests.factories import AccountFactory, PlanFactory
from tests.payments.helpers import deliver, event

pytestmark = pytest.mark.django_db

DAY = 86400


def _subscription(account, plan, status: str, start: int, *, sub_id: str = "sub_test_1") -> dict:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": "cus_test_1",
        "status": status,
        "current_period_start": start,
        "current_period_end": start + 30 * DAY,
        "trial_end": start + 30 * DAY if status == "trialing" else None,
        "metadata": {"account": account.public_id, "plan": plan.code},
    }


def test_a_new_trialing_subscription_is_mirrored_and_gets_the_trial_allowance_once():
    account, plan = AccountFactory(), PlanFactory()
    now = int(time.time())
    payload = event("customer.subscription.created", _subscription(account, plan, "trialing", now))
    deliver(payload)
    deliver(payload)
    local = Subscription.objects.get(stripe_subscription_id="sub_test_1")
    assert local.status == "trialing" and local.is_trial
    assert [g.amount for g in AllowanceGrant.objects.filter(subscription=local)] == [Decimal("10.00")]


def test_trial_ending_active_in_stripe_makes_it_paid_with_the_paid_allowance():
    account, plan = AccountFactory(), PlanFactory()
    now = int(time.time())
    deliver(
        event(
            "customer.subscription.created",
            _subscription(account, plan, "trialing", now - 30 * DAY),
            created=now - 30 * DAY,
        )
    )
    deliver(event("customer.subscription.updated", _subscription(account, plan, "active", now), created=now))
    local = Subscription.objects.get()
    assert local.status == "active" and not local.is_trial
    assert sorted(g.amount for g in AllowanceGrant.objects.filter(subscription=local)) == [
        Decimal("10.00"),
        Decimal("100.00"),
    ]


def test_an_update_older_than_the_stored_state_is_ignored():
    account, plan = AccountFactory(), PlanFactory()
    now = int(time.time())
    deliver(event("customer.subscription.created", _subscription(account, plan, "active", now - 60), created=now - 60))
    deliver(event("customer.subscription.updated", _subscription(account, plan, "past_due", now - 60), created=now))
    older = deliver(
        event("customer.subscription.updated", _subscription(account, plan, "active", now - 60), created=now - 30)
    )
    assert older.status == "ignored" and "Older" in older.result
    assert Subscription.objects.get().status == "past_due"


def test_a_deleted_subscription_is_canceled():
    account, plan = AccountFactory(), PlanFactory()
    now = int(time.time())
    deliver(event("customer.subscription.created", _subscription(account, plan, "active", now), created=now - 5))
    deliver(event("customer.subscription.deleted", _subscription(account, plan, "canceled", now), created=now))
    assert Subscription.objects.get().status == "canceled"


def test_invoice_paid_for_the_next_period_moves_the_period_and_grants_it_once():
    account, plan = AccountFactory(), PlanFactory()
    now = int(time.time())
    deliver(
        event(
            "customer.subscription.created",
            _subscription(account, plan, "active", now - 30 * DAY),
            created=now - 30 * DAY,
        )
    )
    invoice = {"id": "in_test_1", "object": "invoice", "subscription": "sub_test_1",
               "lines": {"data": [{"period": {"start": now, "end": now + 30 * DAY}}]}}  # fmt: skip
    deliver(event("invoice.paid", invoice))
    deliver(event("invoice.paid", invoice))
    local = Subscription.objects.get()
    assert int(local.current_period_start.timestamp()) == now
    assert AllowanceGrant.objects.filter(subscription=local).count() == 2


def test_a_subscription_naming_no_known_account_is_ignored():
    plan = PlanFactory()
    obj = _subscription(AccountFactory.build(), plan, "active", int(time.time()))
    assert deliver(event("customer.subscription.created", obj)).status == "ignored"
    assert not Subscription.objects.exists()
