"""Auto-recharge: decided under the wallet lock, one PaymentIntent per crossing, credits only via the webhook."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.core import Actor
from billing.exceptions import InsufficientCredits
from billing.models import OutboxMessage, Wallet
from billing.services import charge_create, grant_create
from events.models import FeedEvent
from payments.models import AutoRecharge, Purchase
from payments.services.auto_recharge import auto_recharge_idempotency_key, auto_recharges_stalled_retry
from payments.stripe_api import stripe_client
from payments.tasks import auto_recharge_charge
from tests.concurrency import run_concurrently
from tests.factories import AutoRechargeFactory, CreditPackFactory, PurchaseFactory, funded_account
from tests.payments.helpers import deliver, event
from tests.payments.stripe_objects import DECLINED_CARD, customer_with_card
from tests.sdk.server import free_port


def _recharging_wallet(balance: str = "100.00", card: str | None = None, **config) -> AutoRecharge:
    account = funded_account(balance)
    wallet = Wallet.objects.get(account=account)
    customer, method = customer_with_card(card) if card else ("cus_test", "pm_test")
    return AutoRechargeFactory(
        wallet=wallet, threshold=Decimal("50.00"), stripe_customer_id=customer, stripe_payment_method_id=method,
        **config,
    )  # fmt: skip


def _charge(config: AutoRecharge, amount: str) -> None:
    charge_create(account=config.wallet.account, credit_type=config.wallet.credit_type, amount=amount, actor=Actor())


def _recharges(config: AutoRecharge):
    return Purchase.objects.filter(account=config.wallet.account, kind="auto_recharge").order_by("id")


@pytest.mark.django_db
def test_a_charge_that_stays_above_the_threshold_starts_nothing():
    config = _recharging_wallet()
    _charge(config, "40.00")
    assert not _recharges(config).exists()


@pytest.mark.django_db
def test_crossing_the_threshold_records_one_pending_recharge_of_the_configured_amount():
    config = _recharging_wallet()
    _charge(config, "60.00")
    recharge = _recharges(config).get()
    assert (recharge.status, recharge.credits, recharge.amount_minor) == ("pending", Decimal("100.00"), 1000)


@pytest.mark.django_db
def test_a_target_buys_up_to_the_target_at_the_packs_price():
    config = _recharging_wallet(amount=None, target=Decimal("200.00"), pack=CreditPackFactory(price_minor=999))
    _charge(config, "60.00")  # 40 left: buy 160 at 9.99 per 100 -> 1598.4, rounded up
    recharge = _recharges(config).get()
    assert (recharge.credits, recharge.amount_minor) == (Decimal("160.00"), 1599)


@pytest.mark.django_db(transaction=True)
def test_thirty_concurrent_charges_crossing_the_threshold_create_one_payment_intent(stripe_on):
    config = _recharging_wallet(card="4242424242424242")
    results = run_concurrently(lambda _: _charge(config, "3.00"), 30)
    assert [r for r in results if r is not None] == []
    recharge = _recharges(config).get()  # one, though every charge after the 17th was below the threshold
    auto_recharge_charge(recharge.pk)
    auto_recharge_charge(recharge.pk)  # a redelivered task
    listed = stripe_client().v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
    intents = [intent for intent in listed if intent.customer == config.stripe_customer_id]
    assert len(intents) == 1
    recharge.refresh_from_db()
    assert recharge.stripe_payment_intent_id == intents[0].id and intents[0].status == "succeeded"
    assert intents[0].metadata["purchase"] == recharge.public_id
    # Credits arrive only through the webhook path.
    assert Wallet.objects.get(pk=config.wallet_id).balance == Decimal("10.00")
    intent = stripe_client().v1.payment_intents.retrieve(recharge.stripe_payment_intent_id)
    deliver(event("payment_intent.succeeded", intent.to_dict(for_json=True)))
    assert Wallet.objects.get(pk=config.wallet_id).balance == Decimal("110.00")
    assert Purchase.objects.get(pk=recharge.pk).status == "paid"


@pytest.mark.django_db
def test_the_payment_intent_carries_a_key_derived_from_the_wallet_and_the_crossing():
    config = _recharging_wallet()
    _charge(config, "60.00")
    recharge = _recharges(config).get()
    assert (
        auto_recharge_idempotency_key(recharge, config.wallet_id)
        == f"auto-recharge:{config.wallet_id}:{recharge.public_id}"
    )


@pytest.mark.django_db
def test_three_failed_payments_in_a_row_turn_auto_recharge_off_with_an_alert(stripe_on):
    config = _recharging_wallet(card=DECLINED_CARD)
    for _ in range(3):
        _charge(config, "60.00" if not _recharges(config).exists() else "5.00")
        recharge = _recharges(config).last()
        auto_recharge_charge(recharge.pk)
        assert Purchase.objects.get(pk=recharge.pk).status == "failed"
    config.refresh_from_db()
    assert not config.enabled and config.consecutive_failures == 3
    assert "3 failed payments" in config.disabled_reason and "declined" in config.disabled_reason.lower()
    assert OutboxMessage.objects.filter(topic="alert.payments", payload__wallet=config.wallet_id).exists()
    (failed,) = FeedEvent.objects.filter(type="auto_recharge.failed", account=config.wallet.account)
    assert failed.data["consecutive_failures"] == 3 and "declined" in failed.data["reason"].lower()
    _charge(config, "5.00")
    assert _recharges(config).count() == 3  # off: no fourth attempt


@pytest.mark.django_db
def test_a_failure_reported_twice_counts_once(stripe_on):
    config = _recharging_wallet(card=DECLINED_CARD)
    _charge(config, "60.00")
    recharge = _recharges(config).get()
    auto_recharge_charge(recharge.pk)
    intent = {"id": "pi_failed", "object": "payment_intent", "metadata": {"purchase": recharge.public_id},
              "last_payment_error": {"message": "Your card was declined."}}  # fmt: skip
    deliver(event("payment_intent.payment_failed", intent))
    config.refresh_from_db()
    assert config.consecutive_failures == 1 and config.enabled


@pytest.mark.django_db
def test_the_monthly_cap_holds():
    config = _recharging_wallet(monthly_cap_minor=2500)  # each recharge: 100 credits for 10.00
    account = config.wallet.account
    PurchaseFactory(account=account, pack=config.pack, kind="auto_recharge", status="paid")
    _charge(config, "60.00")  # 10.00 spent + 10.00 = 20.00 <= 25.00
    assert _recharges(config).count() == 2
    Purchase.objects.filter(kind="auto_recharge", status="pending").update(status="paid")
    _charge(config, "5.00")  # 20.00 + 10.00 > 25.00: not charged
    assert _recharges(config).count() == 2


@pytest.mark.django_db
def test_a_declined_charge_starts_no_recharge():
    config = _recharging_wallet()
    with pytest.raises(InsufficientCredits):
        _charge(config, "500.00")
    assert not _recharges(config).exists()


@pytest.mark.django_db
def test_a_debit_that_stays_above_the_threshold_looks_nothing_up_under_the_lock():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    config = _recharging_wallet("100.00")
    with CaptureQueriesContext(connection) as queries:
        _charge(config, "1.00")
    assert not [q for q in queries.captured_queries if "payments_" in q["sql"]]


@pytest.mark.django_db
def test_turning_auto_recharge_off_clears_the_wallets_threshold():
    from payments.services.auto_recharge import auto_recharge_wallet_sync

    config = _recharging_wallet("100.00")
    config.wallet.refresh_from_db()
    assert config.wallet.recharge_below == config.threshold
    config.enabled = False
    config.save()
    auto_recharge_wallet_sync(config)
    config.wallet.refresh_from_db()
    assert config.wallet.recharge_below is None


@pytest.mark.django_db
def test_a_recharge_whose_task_was_lost_is_charged_by_the_sweep(stripe_on):
    from datetime import timedelta

    from django.utils import timezone

    from payments.services.auto_recharge import auto_recharges_stalled_retry

    config = _recharging_wallet(card="4242424242424242")
    _charge(config, "60.00")  # crosses: a pending recharge, its task never run
    recharge = _recharges(config).get()
    assert auto_recharges_stalled_retry() == 0  # too fresh: its own task may still come
    Purchase.objects.filter(pk=recharge.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert auto_recharges_stalled_retry() == 1
    recharge.refresh_from_db()
    assert recharge.stripe_payment_intent_id.startswith("pi_")


@pytest.mark.django_db
def test_a_clawback_or_a_dispute_freeze_below_the_threshold_starts_no_recharge():
    from tests.payments.helpers import charge_refunded, deliver, dispute, paid_purchase

    purchase = paid_purchase()  # 100 purchased credits
    wallet = Wallet.objects.get(account=purchase.account, credit_type=purchase.credit_type)
    config = AutoRechargeFactory(wallet=wallet, threshold=Decimal("95.00"), pack=purchase.pack)
    deliver(charge_refunded(purchase, amount_refunded=100))  # claws back 10: available 90, below 95
    deliver(dispute(purchase, "charge.dispute.created", "needs_response"))  # freezes the rest
    assert not _recharges(config).exists()


@pytest.mark.django_db
def test_stripe_unreachable_is_not_a_failure_and_the_sweep_pays_the_same_recharge_once_it_answers(stripe_on, settings):
    config = _recharging_wallet(card="4242424242424242")
    _charge(config, "60.00")
    recharge = _recharges(config).get()
    reachable = settings.STRIPE_API_BASE
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"  # nothing listens: whether it paid is unknown
    auto_recharge_charge(recharge.pk)
    recharge.refresh_from_db()
    config.refresh_from_db()
    assert recharge.status == "pending" and config.consecutive_failures == 0  # still the one in flight
    grant_create(account=config.wallet.account, credit_type=config.wallet.credit_type, amount="100", actor=Actor())
    _charge(config, "100.00")  # crossing again (140 -> 40) starts no second recharge while this one is in flight
    assert _recharges(config).count() == 1
    settings.STRIPE_API_BASE = reachable
    Purchase.objects.filter(pk=recharge.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert auto_recharges_stalled_retry() == 1
    recharge.refresh_from_db()
    assert recharge.stripe_payment_intent_id and recharge.status == "pending"  # paid when its webhook arrives
