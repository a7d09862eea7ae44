"""The plan's daily limit, read by billing's debit lock through the plan limit source this app registers."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import statements
from billing.exceptions import DailyLimitExceeded
from billing.models import DailyLimitOverride
from billing.services import Actor, charge_create, daily_limit_get
from subscriptions.services import subscription_create, subscription_status_set
from subscriptions.statements import plan_limits_join
from tests.factories import CreditTypeFactory, PlanFactory, default_credit_type, funded_account

D = Decimal


def charge(account, amount):
    return charge_create(account=account, credit_type=default_credit_type(), amount=D(amount), actor=Actor.system())


def limit_for(account):
    return daily_limit_get(account=account, credit_type=default_credit_type())


def override(account, limit):
    return DailyLimitOverride.objects.create(account=account, credit_type=default_credit_type(), daily_limit=limit)


def test_the_app_registers_its_plan_limit_source_with_billing():
    assert statements._plan_limit_sources == [plan_limits_join]
    assert plan_limits_join() in statements._wallet_lock_for_debit_sql()  # the debit lock reads it, one statement


@pytest.mark.django_db
def test_the_plan_limit_applies_and_an_override_replaces_it():
    account = funded_account("100.00")
    subscription_create(account=account, plan=PlanFactory(daily_limit=D("20")))
    assert limit_for(account) == D("20")
    row = override(account, D("50"))
    assert limit_for(account) == D("50")
    row.daily_limit = None  # an empty override lifts the limit for this account
    row.save()
    assert limit_for(account) is None


@pytest.mark.django_db
def test_a_plan_in_another_credit_type_sets_no_limit_here():
    account = funded_account("100.00")
    subscription_create(account=account, plan=PlanFactory(credit_type=CreditTypeFactory(code="tokens")))
    assert limit_for(account) is None


@pytest.mark.django_db
def test_trialing_subscription_gets_the_trial_limit():
    account = funded_account("100.00")
    subscription_create(account=account, plan=PlanFactory(), status="trialing")
    assert limit_for(account) == D("5.00")
    charge(account, "5")
    with pytest.raises(DailyLimitExceeded):
        charge(account, "0.01")


@pytest.mark.django_db
def test_paid_subscription_with_a_stale_trial_marker_gets_the_paid_limit():
    account = funded_account("100.00")
    subscription_create(
        account=account,
        plan=PlanFactory(),
        status="active",
        trial_end=timezone.now() + timedelta(days=10),
        metadata={"trial": True, "is_trial": "true"},
        stripe_customer_id="cus_123",
        stripe_subscription_id="sub_123",
    )
    assert limit_for(account) == D("20.00")
    charge(account, "15")  # well past the trial's 5


@pytest.mark.django_db
def test_canceled_subscription_sets_no_limit():
    account = funded_account("100.00")
    subscription = subscription_create(account=account, plan=PlanFactory())
    subscription_status_set(subscription=subscription, status="canceled")
    assert limit_for(account) is None
