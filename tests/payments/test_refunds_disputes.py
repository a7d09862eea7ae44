"""Refunds claw back what is left of the bought credits; disputes freeze them, then release or claw back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Account
from billing.models import CreditLot, Hold, LedgerEntry, OutboxMessage, Wallet
from payments.services.events import stripe_event_process
from tests.factories import PurchaseFactory
from tests.payments.helpers import charge_refunded, checkout_completed, deliver, dispute, paid_purchase, spend
from tests.payments.stripe_objects import payment_intent

pytestmark = pytest.mark.django_db


def _wallet(purchase) -> Wallet:
    return Wallet.objects.get(account=purchase.account, credit_type=purchase.credit_type)


def test_a_full_refund_after_half_was_spent_claws_back_half_and_records_half_unrecovered():
    purchase = paid_purchase()
    spend(purchase, "50.00")
    deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.clawed_back, purchase.unrecovered) == (
        "refunded",
        Decimal("50.00"),
        Decimal("50.00"),
    )
    assert _wallet(purchase).balance == Decimal("0.00")
    clawback = LedgerEntry.objects.filter(account=purchase.account, kind="adjustment").get()
    assert clawback.amount == Decimal("-50.00") and clawback.related_entry_id == purchase.grant_entry_id
    assert CreditLot.objects.get(entry=purchase.grant_entry).remaining == Decimal("0.00")
    assert OutboxMessage.objects.filter(topic="alert.payments").exists()


def test_a_partial_refund_claws_back_its_share_and_a_repeat_moves_nothing():
    purchase = paid_purchase()  # 100 credits for 1000 cents
    deliver(charge_refunded(purchase, amount_refunded=250))
    deliver(charge_refunded(purchase, amount_refunded=250))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.clawed_back, purchase.unrecovered) == ("paid", Decimal("25.00"), Decimal("0.00"))
    assert _wallet(purchase).balance == Decimal("75.00")


def test_an_older_smaller_refund_total_arriving_late_moves_nothing():
    purchase = paid_purchase()
    deliver(charge_refunded(purchase, amount_refunded=600))
    deliver(charge_refunded(purchase, amount_refunded=300))
    purchase.refresh_from_db()
    assert purchase.clawed_back == Decimal("60.00") and _wallet(purchase).balance == Decimal("40.00")


def test_granted_credits_are_spent_before_purchased_ones_so_a_refund_takes_back_all_it_can(settings):
    purchase = paid_purchase()
    from billing.core import Actor
    from billing.services import grant_create

    grant_create(account=purchase.account, credit_type=purchase.credit_type, amount="30.00", actor=Actor.system())
    spend(purchase, "30.00")  # the granted pool goes first
    deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    purchase.refresh_from_db()
    assert (purchase.clawed_back, purchase.unrecovered) == (Decimal("100.00"), Decimal("0.00"))


def test_unrecovered_credits_suspend_the_account_when_configured(settings):
    settings.CREDITLEDGER_SUSPEND_ON_UNRECOVERED = True
    purchase = paid_purchase()
    spend(purchase, "80.00")
    deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    purchase.account.refresh_from_db()
    assert purchase.account.status == Account.Status.SUSPENDED


def test_unrecovered_credits_leave_the_account_active_by_default():
    purchase = paid_purchase()
    spend(purchase, "80.00")
    deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    purchase.account.refresh_from_db()
    assert purchase.account.status == Account.Status.ACTIVE


def test_a_dispute_opened_then_won_freezes_the_credits_then_releases_them():
    purchase = paid_purchase()
    spend(purchase, "10.00")
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    purchase.refresh_from_db()
    assert purchase.status == "disputed"
    hold = Hold.objects.get(pk=purchase.dispute_hold_id)
    assert (hold.status, hold.amount) == ("pending", Decimal("90.00"))
    assert _wallet(purchase).available == Decimal("0.00")
    assert OutboxMessage.objects.filter(topic="alert.payments", payload__dispute="dp_test_1").exists()

    deliver(dispute(purchase, "charge.dispute.closed", "won"))
    purchase.refresh_from_db()
    hold.refresh_from_db()
    assert purchase.status == "paid" and hold.status == "released"
    assert _wallet(purchase).available == Decimal("90.00")
    assert not LedgerEntry.objects.filter(account=purchase.account, kind="adjustment").exists()


def test_a_dispute_lost_claws_the_frozen_credits_back():
    purchase = paid_purchase()
    spend(purchase, "10.00")
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    deliver(dispute(purchase, "charge.dispute.closed", "lost"))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.clawed_back, purchase.unrecovered) == (
        "refunded", Decimal("90.00"), Decimal("10.00"),
    )  # fmt: skip
    assert _wallet(purchase).balance == Decimal("0.00")


def test_a_dispute_delivered_twice_freezes_once():
    purchase = paid_purchase()
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    assert Hold.objects.filter(account=purchase.account).count() == 1


def test_a_refund_that_arrives_before_the_payment_waits_and_is_applied_after_the_grant():
    purchase = PurchaseFactory(stripe_payment_intent_id="pi_refunded_early")  # known, not yet paid
    early = deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    assert early.status == "received" and "Waiting" in early.result  # left for the sweep
    deliver(checkout_completed(purchase))
    stripe_event_process(event_id=early.pk)  # the sweep's retry
    purchase.refresh_from_db()
    assert (purchase.status, purchase.clawed_back) == ("refunded", Decimal("100.00"))
    assert _wallet(purchase).balance == Decimal("0.00")  # granted, then taken back: nothing invented


def test_a_dispute_closed_before_it_was_opened_waits_for_the_opening():
    purchase = paid_purchase()
    early_close = deliver(dispute(purchase, "charge.dispute.closed", "won"))
    assert early_close.status == "received"
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    stripe_event_process(event_id=early_close.pk)
    purchase.refresh_from_db()
    assert purchase.status == "paid"
    assert Hold.objects.get(pk=purchase.dispute_hold_id).status == "released"
    assert _wallet(purchase).available == Decimal("100.00")


def test_an_event_that_waits_too_long_fails_loudly():
    from payments.services import events as stripe_events

    purchase = PurchaseFactory(stripe_payment_intent_id="pi_never_paid")
    early = deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    for _ in range(stripe_events.DEFER_MAX_ATTEMPTS):
        early = stripe_event_process(event_id=early.pk)
    assert early.status == "failed" and "Gave up" in early.result


def _unpaid_purchase_and_its_intent(**metadata) -> tuple:
    """A checkout purchase whose payment Stripe made (a real PaymentIntent carrying our metadata, as
    checkout_session_create asks) but whose checkout.session.completed has not arrived: the
    payment intent's id is not stored on the purchase yet."""
    purchase = PurchaseFactory()
    intent = payment_intent(amount=purchase.amount_minor, metadata={"purchase": purchase.public_id, **metadata})
    return purchase, intent


def _refund_for_intent(purchase, intent: str, amount_refunded: int) -> dict:
    payload = charge_refunded(purchase, amount_refunded=amount_refunded)
    payload["data"]["object"]["payment_intent"] = intent  # a charge carries no metadata of ours
    return payload


def test_a_refund_before_the_checkout_completion_finds_the_purchase_through_its_payment_intent(stripe_on):
    purchase, intent = _unpaid_purchase_and_its_intent()
    early = deliver(_refund_for_intent(purchase, intent, purchase.amount_minor))
    assert early.status == "received" and f"Waiting for purchase {purchase.public_id}" in early.result

    deliver(checkout_completed(purchase, payment_intent=intent))
    stripe_event_process(event_id=early.pk)  # the sweep's retry
    purchase.refresh_from_db()
    assert (purchase.status, purchase.clawed_back) == ("refunded", Decimal("100.00"))
    assert _wallet(purchase).balance == Decimal("0.00")


def test_a_dispute_before_the_checkout_completion_finds_the_purchase_through_its_payment_intent(stripe_on):
    purchase, intent = _unpaid_purchase_and_its_intent()
    payload = dispute(purchase, "charge.dispute.created", "needs_response")
    payload["data"]["object"]["payment_intent"] = intent
    early = deliver(payload)
    assert early.status == "received" and "Waiting" in early.result
    deliver(checkout_completed(purchase, payment_intent=intent))
    stripe_event_process(event_id=early.pk)
    purchase.refresh_from_db()
    assert purchase.status == "disputed" and _wallet(purchase).available == Decimal("0.00")


def test_a_refund_of_a_payment_intent_without_our_metadata_is_ignored(stripe_on):
    purchase = PurchaseFactory()
    intent = payment_intent(metadata={"order": "someone-elses"})
    stored = deliver(_refund_for_intent(purchase, intent, 500))
    assert stored.status == "ignored" and "No purchase matches" in stored.result


def test_a_refund_whose_payment_intent_cannot_be_fetched_fails_and_is_scheduled_for_a_retry(settings, stripe_on):
    from tests.sdk.server import free_port

    purchase, intent = _unpaid_purchase_and_its_intent()
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # Stripe unreachable
    stored = deliver(_refund_for_intent(purchase, intent, purchase.amount_minor))
    assert stored.status == "failed" and stored.retry_at is not None


def test_a_partial_refund_then_a_dispute_won_returns_the_purchase_to_paid_and_keeps_the_refund():
    purchase = paid_purchase()  # 100 credits for 1000 cents
    deliver(charge_refunded(purchase, amount_refunded=250))
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.dispute_status, purchase.refunded_minor) == ("disputed", "open", 250)
    assert _wallet(purchase).available == Decimal("0.00")

    deliver(dispute(purchase, "charge.dispute.closed", "won"))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.dispute_status, purchase.refunded_minor) == ("paid", "won", 250)
    assert purchase.clawed_back == Decimal("25.00")
    assert Hold.objects.get(pk=purchase.dispute_hold_id).status == "released"
    assert _wallet(purchase).available == Decimal("75.00")


def test_a_full_refund_then_a_dispute_won_leaves_the_purchase_refunded():
    purchase = paid_purchase()
    deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    purchase.refresh_from_db()
    assert purchase.status == "disputed"
    deliver(dispute(purchase, "charge.dispute.closed", "won"))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.dispute_status, purchase.clawed_back) == ("refunded", "won", Decimal("100.00"))


def test_a_full_refund_during_an_open_dispute_claws_back_the_frozen_credits_and_the_close_releases_the_hold():
    purchase = paid_purchase()
    spend(purchase, "10.00")
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    deliver(charge_refunded(purchase, amount_refunded=purchase.amount_minor))
    purchase.refresh_from_db()
    # Still disputed (the refund does not hide the open dispute); the frozen 90 were taken back, not lost.
    assert (purchase.status, purchase.clawed_back, purchase.unrecovered) == (
        "disputed", Decimal("90.00"), Decimal("10.00"),
    )  # fmt: skip

    deliver(dispute(purchase, "charge.dispute.closed", "won"))
    purchase.refresh_from_db()
    assert (purchase.status, purchase.dispute_status) == ("refunded", "won")
    assert not Hold.objects.filter(account=purchase.account, status="pending").exists()
    wallet = _wallet(purchase)
    assert (wallet.balance, wallet.held) == (Decimal("0.00"), Decimal("0.00"))


def test_a_partial_refund_during_an_open_dispute_keeps_the_rest_frozen_and_a_lost_close_takes_it_back():
    purchase = paid_purchase()
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))
    first_hold = purchase.__class__.objects.get(pk=purchase.pk).dispute_hold
    deliver(charge_refunded(purchase, amount_refunded=250))
    purchase.refresh_from_db()
    first_hold.refresh_from_db()
    refrozen = Hold.objects.get(pk=purchase.dispute_hold_id)
    assert (purchase.status, purchase.clawed_back) == ("disputed", Decimal("25.00"))
    assert (first_hold.status, refrozen.status, refrozen.amount) == ("released", "pending", Decimal("75.00"))
    assert _wallet(purchase).available == Decimal("0.00")

    deliver(dispute(purchase, "charge.dispute.closed", "lost"))
    purchase.refresh_from_db()
    refrozen.refresh_from_db()
    assert (purchase.status, purchase.dispute_status, purchase.clawed_back) == ("refunded", "lost", Decimal("100.00"))
    assert refrozen.status == "released" and _wallet(purchase).balance == Decimal("0.00")
