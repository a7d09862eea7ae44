"""Missed webhooks are found: `stripe_sync` processes what Stripe has and we do not; reconcile reports drift."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.core import Actor
from billing.models import CreditLot, LedgerEntry
from billing.reconciliation import reconciliation_run
from billing.services import grant_create
from payments.models import Purchase, StripeEvent
from payments.stripe_api import stripe_client
from subscriptions.models import AllowanceGrant, Subscription
from tests.factories import AccountFactory, PlanFactory, PurchaseFactory, default_credit_type
from tests.payments.helpers import paid_purchase
from tests.payments.stripe_objects import customer_with_card, subscription

pytestmark = pytest.mark.django_db


def test_stripe_sync_grants_a_payment_whose_webhook_never_arrived(stripe_on, capsys):
    purchase = PurchaseFactory()
    customer, method = customer_with_card()
    intent = stripe_client().v1.payment_intents.create(
        params={"amount": purchase.amount_minor, "currency": "usd", "customer": customer, "payment_method": method,
                "confirm": True, "metadata": {"purchase": purchase.public_id}},
    )  # fmt: skip
    call_command("stripe_sync", "--since", "1")
    purchase.refresh_from_db()
    assert purchase.status == "paid" and purchase.stripe_payment_intent_id == intent.id
    assert StripeEvent.objects.filter(type="payment_intent.succeeded", source="sync").exists()
    assert "processed" in capsys.readouterr().out
    call_command("stripe_sync", "--since", "1")  # again: nothing more
    assert LedgerEntry.objects.filter(account=purchase.account).count() == 1


def test_stripe_sync_refuses_a_since_without_time_zone(stripe_on):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("stripe_sync", "--since", "2026-01-01T00:00:00")


def test_reconcile_reports_a_paid_purchase_without_a_grant():
    purchase = PurchaseFactory()
    Purchase.objects.filter(pk=purchase.pk).update(status="paid")
    run = reconciliation_run(account=purchase.account)
    assert run.status == "drift"
    assert [d.kind for d in run.discrepancies.all()] == ["purchase_without_grant"]


def test_reconcile_reports_purchased_credits_without_a_paid_purchase():
    account = AccountFactory()
    grant_create(account=account, credit_type=default_credit_type(), amount="5.00", actor=Actor.system(),
                 source=CreditLot.Source.PURCHASED)  # fmt: skip
    run = reconciliation_run(account=account)
    assert [d.kind for d in run.discrepancies.all()] == ["grant_without_purchase"]
    assert run.discrepancies.get().actual == Decimal("5.00")


def test_reconcile_is_clean_for_paid_and_refunded_purchases():
    purchase = paid_purchase()
    assert reconciliation_run(account=purchase.account).status == "clean"


def test_stripe_sync_mirrors_a_subscription_whose_webhooks_never_arrived(stripe_on):
    account, plan = AccountFactory(), PlanFactory()
    real = subscription(metadata={"account": account.public_id, "plan": plan.code})
    call_command("stripe_sync", "--since", "1")
    local = Subscription.objects.get(stripe_subscription_id=real["id"])
    assert local.account == account and local.plan == plan and local.status == "active"
    assert AllowanceGrant.objects.filter(subscription=local).count() == 1
    call_command("stripe_sync", "--since", "1")  # again: the same state, the allowance still granted once
    assert AllowanceGrant.objects.filter(subscription=local).count() == 1


def test_stripe_sync_stamps_a_listed_subscription_with_stripes_clock_not_ours(stripe_on, time_machine):
    from datetime import UTC, datetime, timedelta

    from payments.models import StripeObjectVersion

    account, plan = AccountFactory(), PlanFactory()
    real = subscription(metadata={"account": account.public_id, "plan": plan.code})
    # Our clock an hour ahead: stamped with it, every event of the next hour would count as older.
    time_machine.move_to(datetime.now(UTC) + timedelta(hours=1), tick=True)
    call_command("stripe_sync", "--since", "1")
    version = StripeObjectVersion.objects.get(stripe_id=real["id"]).version
    assert abs(version - (datetime.now(UTC) - timedelta(hours=1))) < timedelta(seconds=30)
    assert version.microsecond == 0  # an HTTP Date: whole seconds, as Stripe's `created`
