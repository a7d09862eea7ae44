from decimal import Decimal
from functools import partial

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from accounts.exceptions import AccountSuspended
from billing.exceptions import InsufficientCredits, InvalidAmount
from billing.models import LedgerEntry, Wallet
from billing.services import Actor, adjustment_create, charge_create, grant_create
from pricing.services import Usage, price_quote
from tests.concurrency import run_concurrently
from tests.factories import AccountFactory, CreditTypeFactory, PriceFactory, default_credit_type, funded_account


def wallet_of(account, credit_type=None) -> Wallet:
    return Wallet.objects.get(account=account, credit_type=credit_type or default_credit_type())


def ledger_sum(wallet: Wallet) -> Decimal:
    return LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"] or Decimal(0)


@pytest.mark.django_db
def test_grant_creates_wallet_and_entry_with_balance_after():
    account = AccountFactory()
    entry = grant_create(account=account, credit_type=default_credit_type(), amount="10.50", actor=Actor.system())
    wallet = wallet_of(account)
    assert wallet.balance == Decimal("10.50")
    assert entry.kind == "grant" and entry.amount == Decimal("10.50") and entry.balance_after == Decimal("10.50")


@pytest.mark.django_db
def test_charge_deducts_and_records_in_one_entry():
    account = funded_account("10.00")
    entry = charge_create(
        account=account, credit_type=default_credit_type(), amount="3.25", actor=Actor.system(), task_id="t-1"
    )
    wallet = wallet_of(account)
    assert wallet.balance == Decimal("6.75")
    assert entry.amount == Decimal("-3.25") and entry.balance_after == Decimal("6.75") and entry.task_id == "t-1"
    assert ledger_sum(wallet) == wallet.balance


@pytest.mark.django_db
def test_charge_beyond_balance_raises_and_changes_nothing():
    account = funded_account("5.00")
    with pytest.raises(InsufficientCredits) as caught:
        charge_create(account=account, credit_type=default_credit_type(), amount="5.01", actor=Actor.system())
    assert caught.value.code == "insufficient_credits"
    assert wallet_of(account).balance == Decimal("5.00")
    assert LedgerEntry.objects.filter(account=account).count() == 1


@pytest.mark.django_db
def test_insufficient_credits_reveals_only_a_rounded_balance():
    account = AccountFactory()
    fine = CreditTypeFactory(code="usd6", scale=6)
    grant_create(account=account, credit_type=fine, amount="1.234567", actor=Actor.system())
    with pytest.raises(InsufficientCredits) as caught:
        charge_create(account=account, credit_type=fine, amount="2", actor=Actor.system())
    assert "1.234567" not in str(caught.value)
    assert caught.value.details["available"] == "1.23"


@pytest.mark.django_db
def test_charge_on_suspended_account_is_refused():
    account = funded_account("5.00", status="suspended")
    with pytest.raises(AccountSuspended):
        charge_create(account=account, credit_type=default_credit_type(), amount="1", actor=Actor.system())


@pytest.mark.django_db
@pytest.mark.parametrize("amount", ["0", "-1", "NaN", "Infinity", "1e400", "1.001", "abc", 1.5])
def test_service_refuses_bad_amounts(amount):
    account = funded_account("5.00")
    with pytest.raises(InvalidAmount):
        charge_create(account=account, credit_type=default_credit_type(), amount=amount, actor=Actor.system())
    assert wallet_of(account).balance == Decimal("5.00")


@pytest.mark.django_db
def test_adjustment_needs_reason_and_may_be_negative():
    account = funded_account("5.00")
    with pytest.raises(InvalidAmount):
        adjustment_create(
            account=account, credit_type=default_credit_type(), amount="-1", reason=" ", actor=Actor.system()
        )
    entry = adjustment_create(
        account=account, credit_type=default_credit_type(), amount="-1.50", reason="fix", actor=Actor.system()
    )
    assert entry.kind == "adjustment" and wallet_of(account).balance == Decimal("3.50")


@pytest.mark.django_db
def test_database_refuses_negative_balance():
    account = funded_account("1.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(account=account).update(balance=Decimal("-1"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement", ["UPDATE billing_ledgerentry SET amount = 999", "DELETE FROM billing_ledgerentry"]
)
def test_database_refuses_ledger_update_and_delete(statement):
    funded_account("1.00")
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_fifty_threads_charging_a_wallet_funded_for_twenty():
    account = funded_account("20.00")
    credit_type = default_credit_type()

    def charge(i):
        return charge_create(
            account=account, credit_type=credit_type, amount="1.00", actor=Actor.system(), task_id=f"t{i}"
        )

    results = run_concurrently(charge, 50)
    succeeded = [r for r in results if isinstance(r, LedgerEntry)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert len(succeeded) == 20 and len(refused) == 30
    wallet = wallet_of(account)
    assert wallet.balance == Decimal("0")
    assert ledger_sum(wallet) == wallet.balance


@pytest.mark.django_db
@pytest.mark.parametrize(("amount", "accepted"), [("7.5", True), ("7.49", False), ("abc", False), (7.5, False)])
def test_an_amount_given_with_a_quote_is_parsed_and_must_match_it(amount, accepted):
    account = funded_account("100.00")
    PriceFactory(key="openai/gpt-4o", per_1k_input_tokens=Decimal("7.5"))
    quote = price_quote(key="openai/gpt-4o", usage=Usage(input_tokens=1000))
    charge = partial(charge_create, account=account, credit_type=quote.credit_type, quote=quote, actor=Actor.system())
    if accepted:
        assert charge(amount=amount).amount == Decimal("-7.50")
    else:
        with pytest.raises(InvalidAmount):
            charge(amount=amount)
