"""Refunds of charges (services): seed 003's automatic refunds and their limits."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from billing.core import posting
from billing.models import LedgerEntry, Wallet
from billing.services import Actor, hold_capture
from refunds.exceptions import ChargeFullyRefunded, InvalidRefundReason, NotACharge, RefundExceedsCharge
from refunds.models import RefundLog
from refunds.selectors import refund_stats, refunds_filtered, refunds_for_account
from refunds.services import charge_refundable, refund_issue
from tests.concurrency import run_concurrently
from tests.factories import charge_for, default_credit_type, funded_account, hold_for, service_key


def balance_of(account) -> Decimal:
    return Wallet.objects.get(account=account, credit_type=default_credit_type()).balance


@pytest.mark.django_db
def test_backend_timeout_after_a_charge_refunds_the_credits_with_a_log():
    account = funded_account("10.00")
    api_key, _ = service_key()
    charge = charge_for(account, "1.00", route="/api/tarot/chat", task_id="reading-1")
    log = refund_issue(
        charge=charge,
        reason="timeout",
        api_route="/api/tarot/chat",
        error_message="AI backend timed out after 60s",
        metadata={"backendStatus": 504},
        actor=Actor(api_key=api_key),
    )
    assert balance_of(account) == Decimal("10.00")
    assert (log.account, log.credit_type, log.amount, log.reason) == (
        account,
        default_credit_type(),
        Decimal("1.00"),
        "timeout",
    )
    assert (log.api_route, log.error_message, log.charge, log.metadata) == (
        "/api/tarot/chat",
        "AI backend timed out after 60s",
        charge,
        {"backendStatus": 504},
    )
    assert log.actor_api_key == api_key and log.public_id.startswith("rfd_")
    entry = log.refund_entry
    assert (entry.kind, entry.amount, entry.related_entry, entry.task_id) == (
        "refund",
        Decimal("1.00"),
        charge,
        "reading-1",
    )


@pytest.mark.django_db
def test_a_successful_call_leaves_no_refund_and_history_and_stats_show_only_the_failure():
    account = funded_account("10.00")
    failed = charge_for(account, "1.00", route="/api/tarot/chat")
    charge_for(account, "1.00", route="/api/tarot/chat")  # succeeded: nothing to refund
    refund_issue(charge=failed, reason="backend_failure", api_route="/api/tarot/chat", actor=Actor.system())
    assert balance_of(account) == Decimal("9.00")
    assert [log.charge for log in refunds_for_account(account)] == [failed]
    stats = refund_stats(refunds_filtered(api_route="/api/tarot/chat"))
    assert stats["count"] == 1
    assert stats["by_credit_type"] == [{"credit_type": "credits", "count": 1, "total_amount": "1.00"}]
    assert stats["by_reason"] == [
        {"reason": "backend_failure", "credit_type": "credits", "count": 1, "total_amount": "1.00"}
    ]


@pytest.mark.django_db
def test_refund_defaults_to_what_remains_refundable():
    account = funded_account("10.00")
    charge = charge_for(account, "5.00")
    refund_issue(charge=charge, amount="2.00", reason="customer_service", actor=Actor.system())
    assert charge_refundable(charge) == Decimal("3.00")
    log = refund_issue(charge=charge, reason="customer_service", actor=Actor.system())
    assert log.amount == Decimal("3.00") and charge_refundable(charge) == 0


@pytest.mark.django_db
def test_partial_refunds_adding_up_past_the_charge_refuse_the_last_with_a_code():
    account = funded_account("10.00")
    charge = charge_for(account, "5.00")
    refund_issue(charge=charge, amount="2.00", reason="api_error", actor=Actor.system())
    refund_issue(charge=charge, amount="2.50", reason="api_error", actor=Actor.system())
    with pytest.raises(RefundExceedsCharge) as caught:
        refund_issue(charge=charge, amount="0.51", reason="api_error", actor=Actor.system())
    assert (caught.value.code, caught.value.status) == ("refund_exceeds_charge", 409)
    assert caught.value.details["refundable"] == "0.50"
    refund_issue(charge=charge, amount="0.50", reason="api_error", actor=Actor.system())
    with pytest.raises(ChargeFullyRefunded) as caught:
        refund_issue(charge=charge, reason="api_error", actor=Actor.system())
    assert caught.value.code == "charge_fully_refunded"
    assert balance_of(account) == Decimal("10.00")
    assert RefundLog.objects.filter(charge=charge).count() == 3


@pytest.mark.django_db
def test_only_charges_can_be_refunded():
    account = funded_account("10.00")
    grant = LedgerEntry.objects.get(account=account, kind="grant")
    with pytest.raises(NotACharge) as caught:
        refund_issue(charge=grant, reason="other", actor=Actor.system())
    assert (caught.value.code, caught.value.status) == ("not_a_charge", 422)


@pytest.mark.django_db
def test_unknown_reason_is_refused():
    charge = charge_for(funded_account("10.00"), "1.00")
    with pytest.raises(InvalidRefundReason):
        refund_issue(charge=charge, reason="because", actor=Actor.system())


@pytest.mark.django_db
def test_the_charge_of_a_captured_hold_refunds_like_any_charge():
    account = funded_account("10.00")
    captured = hold_capture(hold=hold_for(account, "6.00"), amount="4.00", actor=Actor.system())
    refund_issue(charge=captured.capture_entry, reason="parsing_error", actor=Actor.system())
    assert balance_of(account) == Decimal("10.00")


@pytest.mark.django_db
def test_refund_of_a_suspended_account_still_gives_credits_back():
    account = funded_account("10.00")
    charge = charge_for(account, "2.00")
    account.status = "suspended"
    account.save()
    refund_issue(charge=charge, reason="customer_service", actor=Actor.system())
    assert balance_of(account) == Decimal("10.00")


@pytest.mark.django_db
def test_database_refuses_refunds_past_the_charge_even_bypassing_the_service():
    account = funded_account("10.00")
    charge = charge_for(account, "1.00")
    with (
        pytest.raises(IntegrityError, match="exceed"),
        posting(account=account, credit_type=default_credit_type()) as p,
    ):
        p.post(kind="refund", amount=Decimal("1.01"), actor=Actor.system(), related_entry=charge)
    assert balance_of(account) == Decimal("9.00")


@pytest.mark.django_db
def test_database_refuses_a_refund_that_does_not_point_at_a_charge():
    account = funded_account("10.00")
    grant = LedgerEntry.objects.get(account=account, kind="grant")
    for related in (None, grant):
        with (
            pytest.raises(IntegrityError, match="charge"),
            posting(account=account, credit_type=default_credit_type()) as p,
        ):
            p.post(kind="refund", amount=Decimal("1.00"), actor=Actor.system(), related_entry=related)


@pytest.mark.django_db
@pytest.mark.parametrize("statement", ["UPDATE refunds_refundlog SET amount = 99", "DELETE FROM refunds_refundlog"])
def test_database_refuses_edits_of_the_refund_log(statement):
    charge = charge_for(funded_account("10.00"), "1.00")
    refund_issue(charge=charge, reason="other", actor=Actor.system())
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_full_refunds_of_one_charge_exactly_one_succeeds():
    account = funded_account("10.00")
    charge = charge_for(account, "4.00")
    results = run_concurrently(
        lambda i: refund_issue(charge=LedgerEntry.objects.get(pk=charge.pk), reason="timeout", actor=Actor.system()),
        20,
    )
    succeeded = [r for r in results if isinstance(r, RefundLog)]
    refused = [r for r in results if isinstance(r, RefundExceedsCharge)]
    assert len(succeeded) == 1 and len(refused) == 19, results
    assert {r.code for r in refused} == {"charge_fully_refunded"}
    assert balance_of(account) == Decimal("10.00")
    refunded = LedgerEntry.objects.filter(related_entry=charge, kind="refund").aggregate(s=Sum("amount"))["s"]
    assert refunded == Decimal("4.00")


@pytest.mark.django_db(transaction=True)
def test_concurrent_partial_refunds_never_exceed_the_charge():
    account = funded_account("10.00")
    charge = charge_for(account, "5.00")
    results = run_concurrently(
        lambda i: refund_issue(
            charge=LedgerEntry.objects.get(pk=charge.pk), amount="0.70", reason="api_error", actor=Actor.system()
        ),
        12,
    )
    assert sum(isinstance(r, RefundLog) for r in results) == 7  # 7 x 0.70 = 4.90 <= 5.00 < 5.60
    assert all(isinstance(r, RefundLog | RefundExceedsCharge) for r in results)
    assert charge_refundable(LedgerEntry.objects.get(pk=charge.pk)) == Decimal("0.10")
