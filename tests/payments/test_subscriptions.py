"""Stripe subscriptions mirrored locally: status and period follow Stripe's, allowances granted once, in any order."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from subscriptions.models import AllowanceGrant, Subscription
from tests.factories import AccountFactory, PlanFactory
from tests.payments.helpers import deliver, event
from tests.payments.stripe_objects import subscription

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


def _same_second_events(account, plan, sub_id: str) -> tuple[dict, dict]:
    """Two events of one second: the subscription went active, then past_due, but which came
    first cannot be told from `created`; here the older state (past_due) is delivered last."""
    now = int(time.time())
    newer = _subscription(account, plan, "active", now, sub_id=sub_id)
    older = _subscription(account, plan, "past_due", now, sub_id=sub_id)
    return (
        event("customer.subscription.updated", newer, created=now),
        event("customer.subscription.updated", older, created=now),
    )


def test_two_events_of_the_same_second_apply_stripes_current_state_not_the_last_delivered(stripe_on):
    account, plan = AccountFactory(), PlanFactory()
    real = subscription(metadata={"account": account.public_id, "plan": plan.code})
    assert real["status"] == "active"
    first, second = _same_second_events(account, plan, real["id"])
    deliver(first)
    tied = deliver(second)
    assert tied.status == "processed" and "Stripe's current state" in tied.result
    assert Subscription.objects.get(stripe_subscription_id=real["id"]).status == "active"


def test_a_tie_for_a_subscription_stripe_no_longer_knows_falls_back_to_the_payload(stripe_on):
    account, plan = AccountFactory(), PlanFactory()
    first, second = _same_second_events(account, plan, "sub_unknown_to_stripe")
    deliver(first)
    tied = deliver(second)
    assert tied.status == "processed" and "Stripe's current state" not in tied.result
    assert Subscription.objects.get().status == "past_due"


def test_a_tie_when_stripe_cannot_be_reached_fails_and_is_retried_later(settings, stripe_on):
    from tests.sdk.server import free_port

    account, plan = AccountFactory(), PlanFactory()
    first, second = _same_second_events(account, plan, "sub_test_tie")
    deliver(first)
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    tied = deliver(second)
    assert tied.status == "failed" and tied.retry_at is not None
    assert Subscription.objects.get().status == "active"


def test_the_first_event_of_a_subscription_is_not_a_tie_with_itself(stripe_on):
    account, plan = AccountFactory(), PlanFactory()
    first, _ = _same_second_events(account, plan, "sub_first_seen")
    stored = deliver(first)
    assert stored.status == "processed" and "Stripe's current state" not in stored.result
