"""Every model in audit.registry.AUDITED is on the trail; no tracked field is a secret.

`CHANGES` holds one change per audited model, made the way the product makes
it (a save, or the service); a model added to AUDITED without a case here
fails `test_every_audited_model_has_a_case`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from accounts.models import Account, ApiKey
from accounts.services import account_set_status, api_key_revoke
from approvals.models import ApprovalRequest, ApprovalThreshold
from approvals.services import approval_reject
from audit.registry import AUDITED
from billing.models import DailyLimitOverride
from payments.models import CreditPack
from pricing.models import CreditType, ModelAlias, Price
from pricing.services import alias_set
from subscriptions.models import Plan, Subscription
from subscriptions.services import subscription_renew, subscription_status_set
from tests.factories import (
    AccountFactory,
    ApprovalRequestFactory,
    ApprovalThresholdFactory,
    CreditPackFactory,
    CreditTypeFactory,
    DailyLimitOverrideFactory,
    PlanFactory,
    PriceFactory,
    SubscriptionFactory,
    UserFactory,
    service_key,
)

pytestmark = pytest.mark.django_db


def _updates(obj) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(obj).filter(action=LogEntry.Action.UPDATE))


def change_account():
    account = AccountFactory()
    account_set_status(account=account, status=Account.Status.SUSPENDED)
    return account, {"status"}


def change_api_key():
    api_key, _ = service_key()
    api_key_revoke(api_key=api_key)
    return api_key, {"revoked_at"}


def change_credit_type():
    credit_type = CreditTypeFactory()
    credit_type.name = "Renamed"
    credit_type.save()
    return credit_type, {"name"}


def change_price():
    first = PriceFactory(per_1k_input_tokens=Decimal("2.5"))
    second = PriceFactory(key=first.key, per_1k_input_tokens=Decimal("3"))
    return second, {"per_1k_input_tokens", "version", "public_id", "effective_from"}


def change_alias():
    PriceFactory(key="provider/a")
    PriceFactory(key="provider/b")
    alias_set(alias="fast", target="provider/a")
    return alias_set(alias="fast", target="provider/b"), {"target"}


def change_plan():
    plan = PlanFactory()
    plan.daily_limit = Decimal("25")
    plan.save()
    return plan, {"daily_limit"}


def change_subscription():
    subscription = SubscriptionFactory()
    subscription_status_set(subscription=subscription, status=Subscription.Status.PAST_DUE)
    return subscription, {"status"}


def change_daily_limit():
    override = DailyLimitOverrideFactory(daily_limit=Decimal("10"))
    override.daily_limit = Decimal("12.5")
    override.save()
    return override, {"daily_limit"}


def change_user():
    user = UserFactory()
    user.is_superuser = True
    user.save()
    return user, {"is_superuser"}


def change_group():
    group = Group.objects.create(name="refunders")
    group.permissions.add(Permission.objects.get(codename="refund_charge"))
    return group, {"permissions"}


def change_approval_request():
    approval = ApprovalRequestFactory()
    approver = UserFactory(is_staff=True)
    approver.user_permissions.add(Permission.objects.get(codename="approve_request"))
    approver = get_user_model().objects.get(pk=approver.pk)  # a fresh permission cache
    approval_reject(approval=approval, approver=approver, note="not agreed with the customer")
    return approval, {"status", "decided_by", "decided_at", "decision_note"}


def change_approval_threshold():
    threshold = ApprovalThresholdFactory()
    threshold.threshold = Decimal("2500")
    threshold.save()
    return threshold, {"threshold"}


def change_credit_pack():
    pack = CreditPackFactory()
    pack.price_minor = 1500
    pack.save()
    return pack, {"price_minor"}


CHANGES = {
    CreditPack: change_credit_pack,
    ApprovalRequest: change_approval_request,
    ApprovalThreshold: change_approval_threshold,
    Account: change_account,
    ApiKey: change_api_key,
    CreditType: change_credit_type,
    Price: change_price,
    ModelAlias: change_alias,
    Plan: change_plan,
    Subscription: change_subscription,
    DailyLimitOverride: change_daily_limit,
    get_user_model(): change_user,
    Group: change_group,
}


def test_every_audited_model_has_a_case():
    assert {item.model for item in AUDITED} == set(CHANGES)


@pytest.mark.parametrize("model", list(CHANGES), ids=lambda m: m._meta.label)
def test_a_change_to_every_audited_model_is_recorded_field_by_field(model):
    obj, fields = CHANGES[model]()

    entries = LogEntry.objects.get_for_object(obj).order_by("-timestamp", "-id")
    assert entries.exists(), f"no audit row for {model._meta.label}"
    assert set(entries.first().changes) == fields


@pytest.mark.parametrize("model", list(CHANGES), ids=lambda m: m._meta.label)
def test_no_audited_field_is_a_secret(model):
    options = auditlog.get_model_fields(model)
    tracked = [f.name for f in model._meta.concrete_fields if f.name in options["include_fields"]]
    tracked = [name for name in tracked if name not in options["exclude_fields"]]
    assert not [name for name in tracked if re.search(r"secret|hash|password|(^|_)token$", name)]


def test_a_model_that_is_not_audited_records_nothing():
    from tests.factories import charge_for, funded_account

    account = funded_account("10")
    before = LogEntry.objects.count()
    charge_for(account, "1")
    assert LogEntry.objects.count() == before  # the ledger proves itself; its rows are not on this trail


def test_a_renewal_that_moves_the_period_is_recorded():
    start = timezone.now() - timedelta(days=40)
    subscription = SubscriptionFactory(current_period_start=start, current_period_end=start + timedelta(days=30))

    subscription_renew(subscription=subscription)

    [entry] = _updates(subscription)
    assert set(entry.changes) == {"current_period_start", "current_period_end"}


def test_a_renewal_that_is_not_due_records_nothing():
    subscription = SubscriptionFactory()
    assert subscription_renew(subscription=subscription) is None
    assert _updates(subscription) == []


def test_saving_a_price_without_a_change_is_no_version_and_no_row():
    plan = PlanFactory()
    plan.daily_limit = Decimal("20.000000000")  # the same amount, written differently
    plan.save()
    assert _updates(plan) == []
