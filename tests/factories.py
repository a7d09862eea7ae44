"""factory_boy factories for the whole suite."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

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
