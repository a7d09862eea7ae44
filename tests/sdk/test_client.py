"""Every endpoint through the client against the live server: objects, Decimal money, typed errors, pagers."""

from __future__ import annotations

import uuid
from decimal import Decimal

import creditledger
import pytest

from billing.models import LedgerEntry
from tests.sdk.conftest import PRICE_KEY, available

pytestmark = pytest.mark.django_db


def test_accounts_create_retrieve_list_and_balance(client, account):
    assert client.accounts.retrieve(account.id) == account
    [found] = list(client.accounts.list(external_id=account.external_id))
    assert found.id == account.id and isinstance(found, creditledger.Account)
    balance = client.accounts.balance(account.id, refresh=True)
    assert balance.source == "database"
    wallet = balance.for_credit_type("credits")
    assert (wallet.balance, wallet.held, wallet.available) == (Decimal("100.00"), Decimal("0.00"), Decimal("100.00"))
    assert isinstance(wallet.available, Decimal)


def test_money_is_decimal_both_ways_and_floats_are_refused(client, account):
    entry = client.charges.create(account.id, amount=Decimal("0.10"), route="/r", metadata={"n": Decimal("1.5")})
    assert isinstance(entry, creditledger.LedgerEntry)
    assert entry.amount == Decimal("-0.10") and isinstance(entry.amount, Decimal)
    assert entry.balance_after == Decimal("99.90")
    assert entry.metadata == {"n": "1.5"}
    with pytest.raises(TypeError, match="never float"):
        client.charges.create(account.id, amount=0.1)
    assert LedgerEntry.objects.filter(account__public_id=account.id, kind="charge").count() == 1


def test_a_priced_charge_quotes_and_prices(client, account):
    quote = client.quotes.create(PRICE_KEY, usage={"input_tokens": 1000})
    assert quote.amount == Decimal("2.5")
    entry = client.charges.create(account.id, key=PRICE_KEY, usage={"input_tokens": 1000})
    assert entry.amount == Decimal("-2.50")
    assert entry.pricing.resolved_key == PRICE_KEY
    prices = client.prices.list()
    [row] = [p for p in prices.data if p.key == PRICE_KEY]
    assert row.per_1k_input_tokens == Decimal("2.5")


def test_charges_batch_answers_each_item_and_replays(client, account):
    items = [
        {"account": account.id, "amount": Decimal("1.25"), "idempotency_key": f"b-{uuid.uuid4()}"},
        {"account": account.id, "key": PRICE_KEY, "usage": {"input_tokens": 1000}},
        {"account": account.id, "amount": "1000.00"},
    ]
    batch = client.charges.batch(items)
    assert isinstance(batch, creditledger.ChargeBatch)
    first, priced, declined = batch.data
    assert isinstance(first.result, creditledger.LedgerEntry) and first.result.amount == Decimal("-1.25")
    assert first.error is None and first.replayed is False
    assert priced.result.amount == Decimal("-2.50")
    assert declined.result is None and isinstance(declined.error, creditledger.InsufficientCredits)
    again = client.charges.batch(items[:1])
    assert again.data[0].replayed is True and again.data[0].result == first.result
    assert LedgerEntry.objects.filter(account__public_id=account.id, kind="charge").count() == 2


def test_holds_create_retrieve_capture_release(client, account):
    hold = client.holds.create(account.id, amount="10.00", on_expiry="capture", task_id="chat-42")
    assert client.holds.retrieve(hold.id).status == "pending"
    captured = client.holds.capture(hold.id, amount="7.30")
    assert captured.captured_amount == Decimal("7.30")
    other = client.holds.create(account.id, amount="1.00")
    released = client.holds.release(other.id, reason="job cancelled")
    assert released.status == "released"
    with pytest.raises(creditledger.HoldNotPending) as raised:
        client.holds.release(hold.id)
    assert raised.value.hold_status == "captured" and raised.value.status == 409
    assert [h.id for h in client.accounts.holds(account.id)] == [other.id, hold.id]
    assert [h.id for h in client.accounts.holds(account.id, status="released")] == [other.id]


def test_refunds_create_list_and_stats(client, account):
    charge = client.charges.create(account.id, amount="4.00", route="/api/generate")
    refund = client.refunds.create(
        charge.id, reason="backend_failure", amount="1.50", api_route="/api/generate", error_message="upstream 502"
    )
    assert refund.amount == Decimal("1.50") and refund.charge_refundable == Decimal("2.50")
    assert refund.refund_entry.amount == Decimal("1.50")
    with pytest.raises(creditledger.RefundExceedsCharge) as raised:
        client.charges.refund(charge.id, reason="other", amount="3.00")
    assert raised.value.refundable == Decimal("2.50")
    stats = client.refunds.stats(api_route="/api/generate")
    assert stats.count >= 1
    assert [r.id for r in client.accounts.refunds(account.id)] == [refund.id]


def test_lists_follow_cursors_over_several_pages(client, account):
    charges = [client.charges.create(account.id, amount="1.00", task_id=f"t{i}") for i in range(6)]
    pager = client.accounts.transactions(account.id, limit=2)
    pages = list(pager.pages())
    assert len(pages) == 4  # 6 charges and the grant, 2 a page
    assert [len(p.items) for p in pages] == [2, 2, 2, 1]
    entries = list(client.accounts.transactions(account.id, limit=2))
    assert [e.id for e in entries[:6]] == [c.id for c in reversed(charges)]  # newest first
    assert entries[6].kind == "grant"
    only = list(client.accounts.transactions(account.id, kind="charge", limit=4))
    assert len(only) == 6 and all(e.kind == "charge" for e in only)
    assert len(client.accounts.transactions(account.id, limit=2).to_list(limit=3)) == 3


def test_holds_and_refunds_lists_page_too(client, account):
    holds = [client.holds.create(account.id, amount="1.00") for _ in range(3)]
    assert [h.id for h in client.accounts.holds(account.id, limit=2)] == [h.id for h in reversed(holds)]
    charge = client.charges.create(account.id, amount="3.00")
    refunds = [client.refunds.create(charge.id, reason="other", amount="1.00") for _ in range(3)]
    assert [r.id for r in client.accounts.refunds(account.id, limit=1)] == [r.id for r in reversed(refunds)]


def test_insufficient_credits_is_typed_with_decimal_figures(client, account):
    with pytest.raises(creditledger.InsufficientCredits) as raised:
        client.charges.create(account.id, amount="1000.00")
    error = raised.value
    assert (error.status, error.code) == (402, "insufficient_credits")
    assert error.available == Decimal("100.00") and isinstance(error.available, Decimal)
    assert error.required == Decimal("1000.00")
    assert isinstance(error, creditledger.CreditLedgerError)


def test_typed_errors_for_other_codes(ledger, client, account):
    with pytest.raises(creditledger.HoldNotFound) as raised:
        client.holds.retrieve("hold_nope")
    assert isinstance(raised.value, creditledger.NotFound) and raised.value.status == 404

    with pytest.raises(creditledger.ValidationError) as raised:
        client.charges.create(account.id, amount="1.001")
    assert raised.value.param == "amount" and raised.value.fields["amount"][0]["code"]

    with pytest.raises(creditledger.AccountExists):
        client.accounts.create(account.external_id)

    with ledger.client("clk_wrong_key") as stranger, pytest.raises(creditledger.AuthenticationError) as raised:
        stranger.accounts.retrieve(account.id)
    assert raised.value.status == 401

    key = f"reuse-{uuid.uuid4()}"
    client.charges.create(account.id, amount="1.00", idempotency_key=key)
    with pytest.raises(creditledger.IdempotencyKeyReused):
        client.charges.create(account.id, amount="2.00", idempotency_key=key)


def test_the_same_idempotency_key_replays_instead_of_charging_again(client, account):
    key = f"job-{uuid.uuid4()}"
    first = client.charges.create(account.id, amount="5.00", idempotency_key=key)
    again = client.charges.create(account.id, amount="5.00", idempotency_key=key)
    assert again.id == first.id and again.replayed and not first.replayed
    assert available(client, account.id) == Decimal("95.00")
