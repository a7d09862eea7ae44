"""factory_boy factories for the whole suite."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Account, ApiKey
from accounts.services import api_key_create
from billing.services import Actor, grant_create
from pricing.models import CreditType


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    external_id = factory.Sequence(lambda n: f"user-{n}")
    name = factory.Faker("name")
    email = factory.Faker("email")


class CreditTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditType
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"type{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    scale = 2


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "password")
        if create:
            self.save(update_fields=["password"])


def default_credit_type() -> CreditType:
    return CreditType.objects.get_or_create(code="credits", defaults={"name": "Credits", "scale": 2})[0]


def funded_account(amount: str | Decimal = "100.00", credit_type: CreditType | None = None, **kwargs) -> Account:
    """An account with one grant of `amount`."""
    account = AccountFactory(**kwargs)
    grant_create(
        account=account,
        credit_type=credit_type or default_credit_type(),
        amount=Decimal(amount),
        reason="test funding",
        actor=Actor.system(),
    )
    return account


def service_key() -> tuple[ApiKey, str]:
    issued = api_key_create(kind=ApiKey.Kind.SERVICE, name="test service")
    return issued.api_key, issued.secret


def account_key(account: Account) -> tuple[ApiKey, str]:
    issued = api_key_create(kind=ApiKey.Kind.ACCOUNT, account=account, name="test account key")
    return issued.api_key, issued.secret


# --- holds and refunds ------------------------------------------------------


def hold_for(account: Account, amount: str | Decimal = "10.00", credit_type: CreditType | None = None, **kwargs):
    """A pending hold on the account's wallet, made through the service."""
    from billing.services import hold_create

    return hold_create(
        account=account,
        credit_type=credit_type or default_credit_type(),
        amount=Decimal(amount),
        actor=kwargs.pop("actor", Actor.system()),
        **kwargs,
    )


def charge_for(account: Account, amount: str | Decimal = "1.00", credit_type: CreditType | None = None, **kwargs):
    """A charge ledger entry on the account, made through the service."""
    from billing.services import charge_create

    return charge_create(
        account=account,
        credit_type=credit_type or default_credit_type(),
        amount=Decimal(amount),
        actor=kwargs.pop("actor", Actor.system()),
        **kwargs,
    )


def staff_user(*, can_refund: bool = True, **kwargs):
    """A staff user who may view the ledger and refund log, and (by default) refund charges."""
    from django.contrib.auth.models import Permission

    user = UserFactory(**kwargs)
    codenames = ["view_ledgerentry", "view_refundlog", "view_hold"]
    if can_refund:
        codenames.append("refund_charge")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


class PlanFactory(factory.django.DjangoModelFactory):
    """A paid plan of 100 credits a month and 20 a day; a trial gets 10 and 5 a day."""

    class Meta:
        model = "subscriptions.Plan"

    code = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    credit_type = factory.LazyFunction(default_credit_type)
    monthly_allowance = Decimal("100.00")
    daily_limit = Decimal("20.00")
    trial_allowance = Decimal("10.00")
    trial_daily_limit = Decimal("5.00")


# --- pricing ----------------------------------------------------------------


class PriceFactory(factory.django.DjangoModelFactory):
    """A price version, created through `pricing.services.price_create` (so bounds apply
    and the catalogue revision changes). Defaults: 2.5 / 10 credits per 1K input / output tokens."""

    class Meta:
        model = "pricing.Price"

    key = factory.Sequence(lambda n: f"provider/model-{n}")
    credit_type = factory.LazyFunction(default_credit_type)
    per_1k_input_tokens = Decimal("2.5")
    per_1k_output_tokens = Decimal("10")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from pricing.services import price_create

        return price_create(**kwargs)


def alias_for(alias: str, target: str):
    from pricing.services import alias_set

    return alias_set(alias=alias, target=target)


# --- rows written directly --------------------------------------------------
#
# For tests of the database's own rules (tests/test_constraints.py): each
# factory inserts one minimal valid row with the ORM, bypassing the services,
# so a test can then break exactly one rule and watch the database refuse it.


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """A service key row with a placeholder digest (no usable secret)."""

    class Meta:
        model = ApiKey

    name = factory.Sequence(lambda n: f"row key {n}")
    kind = ApiKey.Kind.SERVICE
    prefix = factory.Sequence(lambda n: f"row{n:08d}")
    secret_hash = "0" * 64


class WalletFactory(factory.django.DjangoModelFactory):
    """An empty wallet in the default credit type."""

    class Meta:
        model = "billing.Wallet"

    account = factory.SubFactory(AccountFactory)
    credit_type = factory.LazyFunction(default_credit_type)


class LedgerEntryFactory(factory.django.DjangoModelFactory):
    """A ledger row (a grant of 10 by default) on its wallet's account and credit type."""

    class Meta:
        model = "billing.LedgerEntry"

    wallet = factory.SubFactory(WalletFactory)
    account = factory.SelfAttribute("wallet.account")
    credit_type = factory.SelfAttribute("wallet.credit_type")
    kind = "grant"
    amount = Decimal("10")
    balance_after = Decimal("10")


class HoldFactory(factory.django.DjangoModelFactory):
    """A pending hold of 5, expiring in an hour."""

    class Meta:
        model = "billing.Hold"

    wallet = factory.SubFactory(WalletFactory)
    account = factory.SelfAttribute("wallet.account")
    credit_type = factory.SelfAttribute("wallet.credit_type")
    amount = Decimal("5")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class IdempotencyRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.IdempotencyRecord"

    account = factory.SubFactory(AccountFactory)
    api_key = factory.SubFactory(ApiKeyFactory)
    key = factory.Sequence(lambda n: f"key-{n}")
    endpoint = "charges"
    request_hash = "0" * 64


class OutboxMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.OutboxMessage"

    topic = "test"
    available_at = factory.LazyFunction(timezone.now)


class ReconciliationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.ReconciliationRun"


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """An active subscription in its first 30-day period."""

    class Meta:
        model = "subscriptions.Subscription"

    account = factory.SubFactory(AccountFactory)
    plan = factory.SubFactory(PlanFactory)
    current_period_start = factory.LazyFunction(timezone.now)
    current_period_end = factory.LazyAttribute(lambda o: o.current_period_start + timedelta(days=30))


class AllowanceGrantFactory(factory.django.DjangoModelFactory):
    """The record of a zero allowance for the subscription's current period."""

    class Meta:
        model = "subscriptions.AllowanceGrant"

    subscription = factory.SubFactory(SubscriptionFactory)
    period_start = factory.SelfAttribute("subscription.current_period_start")
    period_end = factory.SelfAttribute("subscription.current_period_end")


class CreditLotFactory(factory.django.DjangoModelFactory):
    """A lot holding all of its grant entry's 10 credits."""

    class Meta:
        model = "billing.CreditLot"

    entry = factory.SubFactory(LedgerEntryFactory)
    wallet = factory.SelfAttribute("entry.wallet")
    account = factory.SelfAttribute("entry.account")
    amount = Decimal("10")
    remaining = Decimal("10")


class DailyUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.DailyUsage"

    wallet = factory.SubFactory(WalletFactory)
    account = factory.SelfAttribute("wallet.account")
    day = factory.LazyFunction(lambda: timezone.now().date())


class DailyLimitOverrideFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.DailyLimitOverride"

    account = factory.SubFactory(AccountFactory)
    credit_type = factory.LazyFunction(default_credit_type)
    daily_limit = Decimal("10")


class PriceRowFactory(factory.django.DjangoModelFactory):
    """Version 1 of a paid price, inserted directly (PriceFactory goes through the service)."""

    class Meta:
        model = "pricing.Price"

    key = factory.Sequence(lambda n: f"provider/row-{n}")
    credit_type = factory.LazyFunction(default_credit_type)
    version = 1
    per_request = Decimal("1")


class ModelAliasFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "pricing.ModelAlias"

    alias = factory.Sequence(lambda n: f"alias/model-{n}")
    target = "provider/model"


class PricingAnomalyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "pricing.PricingAnomaly"

    kind = "zero_cost"
    credit_type = factory.LazyFunction(default_credit_type)
    price_key = "provider/model"
    resolved_key = "provider/model"
    price_source = "catalogue"


class RefundLogFactory(factory.django.DjangoModelFactory):
    """A full refund of a charge of 5: the charge, its refund entry and the log row."""

    class Meta:
        model = "refunds.RefundLog"

    charge = factory.SubFactory(LedgerEntryFactory, kind="charge", amount=Decimal("-5"), balance_after=Decimal("5"))
    refund_entry = factory.SubFactory(
        LedgerEntryFactory,
        wallet=factory.SelfAttribute("..charge.wallet"),
        kind="refund",
        amount=Decimal("5"),
        balance_after=Decimal("10"),
        related_entry=factory.SelfAttribute("..charge"),
    )
    account = factory.SelfAttribute("charge.account")
    credit_type = factory.SelfAttribute("charge.credit_type")
    amount = Decimal("5")
    reason = "other"


class ApprovalRequestFactory(factory.django.DjangoModelFactory):
    """A pending four-eyes request to grant 5,000 credits, expiring in 72 hours."""

    class Meta:
        model = "approvals.ApprovalRequest"

    kind = "grant"
    account = factory.SubFactory(AccountFactory)
    credit_type = factory.LazyFunction(default_credit_type)
    amount = Decimal("5000")
    reason = "large grant"
    requested_by = factory.SubFactory(UserFactory)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=72))


class ApprovalThresholdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "approvals.ApprovalThreshold"

    credit_type = factory.SubFactory(CreditTypeFactory)
    threshold = Decimal("1000")


# --- the console's rollup ------------------------------------------------------


class LedgerDayFactory(factory.django.DjangoModelFactory):
    """One day's charges on one route (a route of its own per row)."""

    class Meta:
        model = "console.LedgerDay"

    day = factory.LazyFunction(timezone.localdate)
    credit_type = factory.LazyFunction(default_credit_type)
    kind = "charge"
    route = factory.Sequence(lambda n: f"/api/route-{n}")
    total = Decimal("-1")
    entries = 1


class WalletDayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "console.WalletDay"

    day = factory.LazyFunction(timezone.localdate)
    wallet = factory.SubFactory(WalletFactory)
    account = factory.SelfAttribute("wallet.account")
    credit_type = factory.SelfAttribute("wallet.credit_type")
    charged = Decimal("1")
    entries = 1


class WalletWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "console.WalletWindow"

    wallet = factory.SubFactory(WalletFactory)
    account = factory.SelfAttribute("wallet.account")
    credit_type = factory.SelfAttribute("wallet.credit_type")
    charged = Decimal("1")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "events.Event"

    type = "grant.created"
    account = factory.SubFactory(AccountFactory)


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookEndpoint"

    url = "https://hooks.example.com/creditledger"
    secret_encrypted = "not-a-real-token"


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookDelivery"

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    event = factory.SubFactory(EventFactory)


class CreditPackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.CreditPack"

    name = factory.Sequence(lambda n: f"Pack {n}")
    credit_type = factory.LazyFunction(default_credit_type)
    credits = Decimal("100.00")
    price_minor = 1000
    currency = "usd"


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.Purchase"

    account = factory.SubFactory(AccountFactory)
    pack = factory.SubFactory(CreditPackFactory)
    credit_type = factory.LazyAttribute(lambda o: o.pack.credit_type)
    credits = factory.LazyAttribute(lambda o: o.pack.credits)
    amount_minor = factory.LazyAttribute(lambda o: o.pack.price_minor)
    currency = "usd"


class StripeEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.StripeEvent"

    stripe_id = factory.Sequence(lambda n: f"evt_test_{n}")
    type = "customer.created"
    stripe_created = factory.LazyFunction(timezone.now)
    payload = factory.LazyAttribute(lambda o: {"id": o.stripe_id, "type": o.type, "data": {"object": {}}})


class StripeObjectVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.StripeObjectVersion"

    stripe_id = factory.Sequence(lambda n: f"sub_test_{n}")
    version = factory.LazyFunction(timezone.now)


class AutoRechargeFactory(factory.django.DjangoModelFactory):
    """Recharge 100 credits (the pack's 10.00 USD) when available drops below 20; at most 50.00 USD a month."""

    class Meta:
        model = "payments.AutoRecharge"
        skip_postgeneration_save = True

    wallet = factory.SubFactory(WalletFactory)
    pack = factory.SubFactory(CreditPackFactory)
    threshold = Decimal("20.00")
    amount = Decimal("100.00")
    monthly_cap_minor = 5000
    stripe_customer_id = "cus_test"
    stripe_payment_method_id = "pm_test"

    @factory.post_generation
    def wallet_sync(self, create, extracted, **kwargs):
        # As auto_recharge_configure does: the wallet row carries the threshold its lock reads.
        if create:
            from payments.services.auto_recharge import auto_recharge_wallet_sync

            auto_recharge_wallet_sync(self)
