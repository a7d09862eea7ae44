"""Plans and subscriptions: allowances granted once per period, trial derived from status."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import CreditLot, LedgerEntry, Wallet
from billing.services import Actor, charge_create, grants_expire_due
from subscriptions.exceptions import SubscriptionConflict
from subscriptions.models import AllowanceGrant, Subscription
from subscriptions.services import (
    period_add_month,
    subscription_create,
    subscription_renew,
    subscription_status_set,
    subscriptions_renew_due,
)
from tests.concurrency import run_concurrently
from tests.factories import AccountFactory, PlanFactory, default_credit_type

D = Decimal


def grants_of(account):
    return LedgerEntry.objects.filter(account=account, kind="grant").order_by("id")


def balance_of(account) -> Decimal:
    return Wallet.objects.get(account=account, credit_type=default_credit_type()).balance


@pytest.mark.django_db
def test_new_paid_subscription_grants_the_monthly_allowance_expiring_at_period_end():
    account = AccountFactory()
    subscription = subscription_create(account=account, plan=PlanFactory())
    assert [g.amount for g in grants_of(account)] == [D("100.00")]
    lot = CreditLot.objects.get(wallet__account=account)
    assert lot.expires_at == subscription.current_period_end
    assert AllowanceGrant.objects.get(subscription=subscription).entry == grants_of(account).get()


@pytest.mark.django_db
def test_allowance_renewal_run_twice_for_one_period_grants_once():
    account = AccountFactory()
    start = timezone.now() - timedelta(days=40)
    subscription = subscription_create(account=account, plan=PlanFactory(), period_start=start)
    now = timezone.now()

    first = subscription_renew(subscription=subscription, now=now)
    second = subscription_renew(subscription=subscription, now=now)
    assert subscriptions_renew_due(now=now) == 0
    call_command("renew_allowances")

    assert first is not None and second is None
    assert grants_of(account).count() == 2  # the first period's and this one's
    subscription.refresh_from_db()
    assert subscription.current_period_start <= now < subscription.current_period_end
    assert AllowanceGrant.objects.filter(subscription=subscription).count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_renewals_of_one_period_grant_once():
    account = AccountFactory()
    subscription = subscription_create(
        account=account, plan=PlanFactory(), period_start=timezone.now() - timedelta(days=35)
    )
    now = timezone.now()
    results = run_concurrently(lambda i: subscription_renew(subscription=subscription, now=now), 8)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len([r for r in results if r is not None]) == 1
    assert grants_of(account).count() == 2


@pytest.mark.django_db
def test_database_refuses_a_second_allowance_grant_for_one_period():
    subscription = subscription_create(account=AccountFactory(), plan=PlanFactory())
    with pytest.raises(IntegrityError, match="allowance_once_per_period"), transaction.atomic():
        AllowanceGrant.objects.create(
            subscription=subscription,
            period_start=subscription.current_period_start,
            period_end=subscription.current_period_end,
        )


@pytest.mark.django_db
def test_paid_subscription_with_a_stale_trial_marker_is_billed_as_paid():
    account = AccountFactory()
    subscription = subscription_create(
        account=account,
        plan=PlanFactory(),
        status="active",
        trial_end=timezone.now() + timedelta(days=14),  # what a lost webhook might leave behind
        metadata={"trial": True},
        stripe_customer_id="cus_1",
        stripe_subscription_id="sub_1",
    )
    assert not subscription.is_trial
    assert [g.amount for g in grants_of(account)] == [D("100.00")]  # not the trial's 10
    assert subscription.daily_limit == D("20.00")  # not the trial's 5
    charge_create(account=account, credit_type=default_credit_type(), amount=D("15"), actor=Actor.system())


@pytest.mark.django_db
def test_trialing_subscription_gets_trial_figures_and_converting_starts_a_paid_period():
    account = AccountFactory()
    subscription = subscription_create(account=account, plan=PlanFactory(), status="trialing")
    assert subscription.is_trial
    assert [g.amount for g in grants_of(account)] == [D("10.00")]

    converted = subscription_status_set(subscription=subscription, status="active")
    assert not converted.is_trial and converted.daily_limit == D("20.00")
    assert [g.amount for g in grants_of(account)] == [D("10.00"), D("100.00")]
    assert balance_of(account) == D("110.00")


@pytest.mark.django_db
def test_past_due_and_canceled_subscriptions_do_not_renew():
    now = timezone.now()
    past_due = subscription_create(account=AccountFactory(), plan=PlanFactory(), period_start=now - timedelta(days=40))
    canceled = subscription_create(account=AccountFactory(), plan=PlanFactory(), period_start=now - timedelta(days=40))
    subscription_status_set(subscription=past_due, status="past_due")
    subscription_status_set(subscription=canceled, status="canceled")
    assert subscriptions_renew_due(now=now) == 0
    assert AllowanceGrant.objects.count() == 2  # only the first periods


@pytest.mark.django_db
def test_missed_periods_are_skipped_not_granted_retroactively():
    account = AccountFactory()
    start = timezone.now() - timedelta(days=100)
    subscription = subscription_create(account=account, plan=PlanFactory(allowance_expires=False), period_start=start)
    assert subscriptions_renew_due() == 1
    subscription.refresh_from_db()
    assert subscription.current_period_start <= timezone.now() < subscription.current_period_end
    assert grants_of(account).count() == 2


@pytest.mark.django_db
def test_unused_allowance_expires_at_period_end():
    account = AccountFactory()
    subscription = subscription_create(account=account, plan=PlanFactory())
    charge_create(account=account, credit_type=default_credit_type(), amount=D("15"), actor=Actor.system())
    assert grants_expire_due(now=subscription.current_period_end + timedelta(seconds=1)) == 1
    assert LedgerEntry.objects.get(account=account, kind="expiry").amount == D("-85.00")
    assert balance_of(account) == 0


@pytest.mark.django_db
def test_an_account_has_one_live_subscription():
    account = AccountFactory()
    subscription = subscription_create(account=account, plan=PlanFactory())
    with pytest.raises(SubscriptionConflict):
        subscription_create(account=account, plan=PlanFactory())
    subscription_status_set(subscription=subscription, status="canceled")
    subscription_create(account=account, plan=PlanFactory())  # a canceled one does not count
    assert Subscription.objects.filter(account=account).count() == 2


@pytest.mark.django_db
def test_zero_allowance_records_the_period_without_a_grant():
    account = AccountFactory()
    subscription = subscription_create(account=account, plan=PlanFactory(trial_allowance=D("0")), status="trialing")
    record = AllowanceGrant.objects.get(subscription=subscription)
    assert record.entry is None and record.amount == 0
    assert not grants_of(account).exists()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 1, 31, 12, tzinfo=UTC), datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (datetime(2028, 1, 31, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 12, 15, tzinfo=UTC), datetime(2027, 1, 15, tzinfo=UTC)),
    ],
)
def test_a_period_is_one_calendar_month(start, end):
    assert period_add_month(start) == end


@pytest.mark.django_db
def test_a_short_trial_period_ends_when_asked_and_then_renews_monthly():
    account = AccountFactory()
    start = timezone.now() - timedelta(days=15)
    subscription = subscription_create(
        account=account,
        plan=PlanFactory(),
        status="trialing",
        period_start=start,
        period_end=start + timedelta(days=14),
    )
    assert subscriptions_renew_due() == 1
    subscription.refresh_from_db()
    assert subscription.current_period_start == start + timedelta(days=14)
    assert subscription.current_period_end == period_add_month(start + timedelta(days=14))
