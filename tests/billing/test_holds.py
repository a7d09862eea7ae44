"""Holds: reserve credits, then capture, release or expire them (services)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from accounts.exceptions import AccountSuspended
from billing.exceptions import HoldNotPending, InsufficientCredits, InvalidExpiresIn
from billing.models import Hold, LedgerEntry, Wallet
from billing.services import (
    Actor,
    charge_create,
    hold_capture,
    hold_create,
    hold_expire,
    hold_release,
    holds_expire_due,
)
from tests.factories import default_credit_type, funded_account, hold_for


def wallet_of(account) -> Wallet:
    return Wallet.objects.get(account=account, credit_type=default_credit_type())


def assert_ledger_proves_balance(account) -> None:
    wallet = wallet_of(account)
    total = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
    assert total == wallet.balance


def expire_now(hold: Hold) -> None:
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.django_db
def test_hold_reserves_available_without_touching_balance():
    account = funded_account("100.00")
    hold = hold_for(account, "30.00", task_id="job-1", route="/api/chat")
    wallet = wallet_of(account)
    assert (wallet.balance, wallet.held, wallet.available) == (Decimal("100.00"), Decimal("30.00"), Decimal("70.00"))
    assert hold.status == "pending" and hold.public_id.startswith("hold_")
    assert LedgerEntry.objects.filter(account=account).count() == 1  # only the grant


@pytest.mark.django_db
def test_hold_beyond_available_raises_insufficient_credits_and_reserves_nothing():
    account = funded_account("50.00")
    hold_for(account, "40.00")
    with pytest.raises(InsufficientCredits) as caught:
        hold_for(account, "10.01")
    assert caught.value.status == 402
    assert wallet_of(account).held == Decimal("40.00")
    assert Hold.objects.filter(account=account).count() == 1


@pytest.mark.django_db
def test_charge_cannot_spend_held_credits():
    account = funded_account("10.00")
    hold_for(account, "8.00")
    with pytest.raises(InsufficientCredits):
        charge_create(account=account, credit_type=default_credit_type(), amount="2.01", actor=Actor.system())


@pytest.mark.django_db
def test_hold_on_suspended_account_is_refused():
    account = funded_account("10.00", status="suspended")
    with pytest.raises(AccountSuspended):
        hold_for(account, "1.00")


@pytest.mark.django_db
@override_settings(CREDITLEDGER_HOLD_DEFAULT_EXPIRES_IN_S=600, CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S=3600)
def test_expires_in_defaults_and_is_bounded_by_settings():
    account = funded_account("10.00")
    before = timezone.now()
    hold = hold_for(account, "1.00")
    assert timedelta(seconds=599) < hold.expires_at - before < timedelta(seconds=601)
    for bad in [0, -5, 3601, True, "60"]:
        with pytest.raises(InvalidExpiresIn):
            hold_for(account, "1.00", expires_in=bad)


@pytest.mark.django_db
def test_capture_less_than_held_charges_it_and_frees_the_rest():
    account = funded_account("100.00")
    hold = hold_for(account, "30.00", task_id="job-1", route="/api/chat", metadata={"model": "m"})
    captured = hold_capture(hold=hold, amount="12.50", actor=Actor.system())
    wallet = wallet_of(account)
    assert captured.status == "captured" and captured.captured_amount == Decimal("12.50")
    assert (wallet.balance, wallet.held) == (Decimal("87.50"), Decimal("0"))
    entry = captured.capture_entry
    assert entry.kind == "charge" and entry.amount == Decimal("-12.50")
    assert (entry.task_id, entry.route, entry.metadata["hold"]) == ("job-1", "/api/chat", hold.public_id)
    assert_ledger_proves_balance(account)


@pytest.mark.django_db
def test_capture_more_than_held_takes_the_extra_from_available():
    account = funded_account("100.00")
    hold = hold_for(account, "30.00")
    captured = hold_capture(hold=hold, amount="45.00", actor=Actor.system())
    assert captured.captured_amount == Decimal("45.00")
    assert wallet_of(account).balance == Decimal("55.00")


@pytest.mark.django_db
def test_capture_beyond_held_plus_available_takes_what_there_is_and_records_the_request():
    account = funded_account("50.00")
    hold = hold_for(account, "30.00")
    other = hold_for(account, "15.00")  # reserved for another job: not available to this capture
    captured = hold_capture(hold=hold, amount="80.00", actor=Actor.system())
    assert captured.captured_amount == Decimal("35.00")  # 30 held + 5 available
    assert captured.requested_amount == Decimal("80.00")
    wallet = wallet_of(account)
    assert (wallet.balance, wallet.held) == (Decimal("15.00"), Decimal("15.00"))
    assert Hold.objects.get(pk=other.pk).status == "pending"
    assert_ledger_proves_balance(account)


@pytest.mark.django_db
def test_zero_capture_resolves_the_hold_without_a_ledger_entry():
    account = funded_account("10.00")
    hold = hold_for(account, "5.00")
    captured = hold_capture(hold=hold, amount="0", actor=Actor.system())
    assert captured.status == "captured" and captured.captured_amount == 0 and captured.capture_entry is None
    assert (wallet_of(account).balance, wallet_of(account).held) == (Decimal("10.00"), Decimal("0"))
    assert LedgerEntry.objects.filter(account=account).count() == 1


@pytest.mark.django_db
def test_release_frees_everything_and_charges_nothing():
    account = funded_account("10.00")
    hold = hold_for(account, "5.00")
    released = hold_release(hold=hold, reason="backend failed", actor=Actor.system())
    assert released.status == "released" and released.release_reason == "backend failed"
    assert released.resolved_at is not None
    assert (wallet_of(account).balance, wallet_of(account).held) == (Decimal("10.00"), Decimal("0"))


@pytest.mark.django_db
def test_repeating_a_transition_returns_the_same_outcome():
    account = funded_account("10.00")
    captured = hold_capture(hold=hold_for(account, "5.00"), amount="3.00", actor=Actor.system())
    again = hold_capture(hold=captured, amount="3.00", actor=Actor.system())
    assert again.capture_entry_id == captured.capture_entry_id
    released = hold_release(hold=hold_for(account, "1.00"), actor=Actor.system())
    assert hold_release(hold=released, actor=Actor.system()).status == "released"
    assert wallet_of(account).balance == Decimal("7.00")
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 1


@pytest.mark.django_db
def test_a_resolved_hold_refuses_a_different_transition_with_hold_not_pending():
    account = funded_account("10.00")
    released = hold_release(hold=hold_for(account, "5.00"), actor=Actor.system())
    with pytest.raises(HoldNotPending) as caught:
        hold_capture(hold=released, amount="1.00", actor=Actor.system())
    assert (caught.value.code, caught.value.status) == ("hold_not_pending", 409)
    captured = hold_capture(hold=hold_for(account, "5.00"), amount="2.00", actor=Actor.system())
    with pytest.raises(HoldNotPending):
        hold_release(hold=captured, actor=Actor.system())
    with pytest.raises(HoldNotPending):
        hold_capture(hold=captured, amount="2.50", actor=Actor.system())
    assert wallet_of(account).balance == Decimal("8.00")


@pytest.mark.django_db
def test_expiry_with_on_expiry_release_frees_the_hold():
    account = funded_account("10.00")
    hold = hold_for(account, "4.00")
    expire_now(hold)
    assert holds_expire_due() == 1
    hold.refresh_from_db()
    assert hold.status == "expired" and hold.captured_amount == 0
    assert (wallet_of(account).balance, wallet_of(account).held) == (Decimal("10.00"), Decimal("0"))


@pytest.mark.django_db
def test_expiry_with_on_expiry_capture_charges_the_held_amount_once():
    account = funded_account("10.00")
    hold = hold_for(account, "4.00", on_expiry="capture", task_id="stream-1")
    expire_now(hold)
    assert holds_expire_due() == 1
    assert holds_expire_due() == 0
    hold.refresh_from_db()
    assert hold.status == "expired" and hold.captured_amount == Decimal("4.00")
    charges = LedgerEntry.objects.filter(account=account, kind="charge")
    assert [c.amount for c in charges] == [Decimal("-4.00")] and charges[0].task_id == "stream-1"
    assert (wallet_of(account).balance, wallet_of(account).held) == (Decimal("6.00"), Decimal("0"))
    assert_ledger_proves_balance(account)


@pytest.mark.django_db
def test_expiry_leaves_holds_that_are_not_due():
    account = funded_account("10.00")
    hold = hold_for(account, "4.00")
    assert holds_expire_due() == 0
    assert hold_expire(hold=hold) is None
    hold.refresh_from_db()
    assert hold.status == "pending"


@pytest.mark.django_db
def test_a_pending_hold_past_its_expiry_can_still_be_captured_before_the_sweep():
    account = funded_account("10.00")
    hold = hold_for(account, "4.00")
    expire_now(hold)
    assert hold_capture(hold=hold, amount="3.00", actor=Actor.system()).status == "captured"
    assert holds_expire_due() == 0


@pytest.mark.django_db
def test_expire_holds_command_and_task_apply_on_expiry(capsys):
    account = funded_account("10.00")
    first, second = hold_for(account, "1.00"), hold_for(account, "2.00", on_expiry="capture")
    expire_now(first)
    expire_now(second)
    call_command("expire_holds", "--batch-size", "1")
    assert "Expired 2 hold(s)." in capsys.readouterr().out
    assert wallet_of(account).balance == Decimal("8.00") and wallet_of(account).held == 0


@pytest.mark.django_db
def test_database_refuses_a_hold_without_resolved_at_once_resolved():
    account = funded_account("10.00")
    hold = hold_for(account, "1.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Hold.objects.filter(pk=hold.pk).update(status="released")


@pytest.mark.django_db
def test_database_refuses_held_beyond_balance():
    account = funded_account("10.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(account=account).update(held=Decimal("10.01"))


@pytest.mark.django_db
def test_capture_and_create_refuse_bad_amounts():
    account = funded_account("10.00")
    with pytest.raises(Exception) as caught:
        hold_create(account=account, credit_type=default_credit_type(), amount="0", actor=Actor.system())
    assert caught.value.code == "invalid_amount"
    hold = hold_for(account, "1.00")
    for bad in ["-1", "1.001", "NaN"]:
        with pytest.raises(Exception) as caught:
            hold_capture(hold=hold, amount=bad, actor=Actor.system())
        assert caught.value.code == "invalid_amount"
