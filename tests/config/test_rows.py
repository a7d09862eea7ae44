"""config/rows.py builds the same single-row statements the ORM would: same rows, same values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.forms.models import model_to_dict

from accounts.models import Account, ApiKey
from billing.models import Hold, LedgerEntry, Wallet
from config.rows import row_find, row_get, row_insert, row_update, row_update_then_insert
from tests.factories import AccountFactory, default_credit_type, funded_account, hold_for, service_key

pytestmark = pytest.mark.django_db


def _values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_row_insert_writes_what_save_would_and_sets_the_pk():
    account = AccountFactory.build(external_id="rows-1", name="Rows")
    row_insert(account)
    assert account.pk is not None and not account._state.adding
    assert _values(Account.objects.get(pk=account.pk)) == _values(account)


def test_row_get_reads_the_orm_row():
    hold = hold_for(funded_account("10.00"), "2.50")
    assert _values(row_get(Hold, hold.pk)) == _values(Hold.objects.get(pk=hold.pk))


def test_row_get_raises_does_not_exist_like_the_orm():
    with pytest.raises(Hold.DoesNotExist):
        row_get(Hold, 0)


def test_row_find_with_related_rows_matches_select_related():
    api_key, _ = service_key()
    found = row_find(ApiKey, by="prefix", value=api_key.prefix, related="account")
    orm = ApiKey.objects.select_related("account").get(prefix=api_key.prefix)
    assert _values(found) == _values(orm)
    assert found.account is None and orm.account is None  # a service key has no account: the LEFT JOIN is empty
    account = funded_account("1.00")
    entry = LedgerEntry.objects.get(account=account)
    found = row_find(LedgerEntry, by="public_id", value=entry.public_id, related=("account", "wallet"))
    assert _values(found.account) == _values(account) and _values(found.wallet) == _values(entry.wallet)
    assert row_find(LedgerEntry, by="public_id", value="txn_missing") is None


def test_row_update_changes_what_filter_update_would_and_counts_rows():
    hold = hold_for(funded_account("10.00"), "1.00")
    assert row_update(Hold, hold.pk, where={"status": "captured"}, release_reason="x") == 0
    assert row_update(Hold, hold.pk, where={"status": "pending"}, release_reason="why") == 1
    assert model_to_dict(Hold.objects.get(pk=hold.pk))["release_reason"] == "why"


def _wallet_and_a_grant_of_one() -> tuple[Wallet, LedgerEntry]:
    """A wallet holding 10.00 and an unsaved grant entry of 1.00 that takes it to 11.00."""
    wallet = Wallet.objects.select_related("account").get(account=funded_account("10.00"))
    entry = LedgerEntry(
        wallet=wallet,
        account=wallet.account,
        credit_type=default_credit_type(),
        kind="grant",
        amount=Decimal("1.00"),
        balance_after=Decimal("11.00"),
    )
    return wallet, entry


def test_row_update_then_insert_does_both_in_one_statement():
    wallet, entry = _wallet_and_a_grant_of_one()
    row_update_then_insert(Wallet, wallet.pk, {"balance": Decimal("11.00")}, entry)
    assert Wallet.objects.get(pk=wallet.pk).balance == Decimal("11.00")
    assert _values(LedgerEntry.objects.get(pk=entry.pk)) == _values(entry)


def test_row_update_then_insert_writes_the_also_rows_in_the_same_statement_and_sets_their_pks():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from events.models import Event

    wallet, entry = _wallet_and_a_grant_of_one()
    account = wallet.account
    first = Event(type="grant.created", account=account, data={"n": 1})
    second = Event(type="balance.low", account=account, data={"n": 2})
    with CaptureQueriesContext(connection) as captured:
        row_update_then_insert(Wallet, wallet.pk, {"balance": Decimal("11.00")}, entry, also=[first, second])
    assert len(captured.captured_queries) == 1
    assert Wallet.objects.get(pk=wallet.pk).balance == Decimal("11.00")
    assert _values(LedgerEntry.objects.get(pk=entry.pk)) == _values(entry)
    assert _values(Event.objects.get(pk=first.pk)) == _values(first)
    assert _values(Event.objects.get(pk=second.pk)) == _values(second)
    assert first.pk != second.pk


def test_a_row_buffer_writes_its_rows_in_bulk_when_it_closes_with_their_pks_in_order():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from billing.models import OutboxMessage
    from billing.outbox import outbox_message_build
    from config.rows import row_buffer, row_buffer_current

    wallets, entries = zip(*[_wallet_and_a_grant_of_one() for _ in range(3)], strict=True)
    messages = [outbox_message_build(topic="webhook.fanout", payload={"n": n}) for n in range(3)]
    now = timezone.now()
    with CaptureQueriesContext(connection) as captured, row_buffer() as buffer:
        assert row_buffer_current() is buffer
        for wallet, entry, message in zip(wallets, entries, messages, strict=True):
            buffer.update(Wallet, wallet.pk, {"balance": Decimal("10.50"), "updated_at": now})
            buffer.update(Wallet, wallet.pk, {"balance": Decimal("11.00")})  # the latest value wins
            buffer.insert(entry, message)
        assert captured.captured_queries == [] and entries[0].pk is None  # nothing written yet
    assert row_buffer_current() is None
    assert len(captured.captured_queries) == 3  # one UPDATE, one INSERT per model
    for wallet, entry, message in zip(wallets, entries, messages, strict=True):
        stored = Wallet.objects.get(pk=wallet.pk)
        assert (stored.balance, stored.updated_at) == (Decimal("11.00"), now)
        assert _values(LedgerEntry.objects.get(pk=entry.pk)) == _values(entry)
        assert _values(OutboxMessage.objects.get(pk=message.pk)) == _values(message)
    assert [e.pk for e in entries] == sorted(e.pk for e in entries)  # keys in the order the rows were added


def test_rows_of_tables_sharing_a_sequence_get_their_keys_in_the_order_they_were_buffered():
    # Ledger entries and stored events share the ledger's id sequence (billing migration 0019): the events
    # feed orders them by id, so a batch's alert must follow the charge that caused it.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from config.rows import row_buffer
    from events.models import Event

    wallets, entries = zip(*[_wallet_and_a_grant_of_one() for _ in range(3)], strict=True)
    events = [Event(type="balance.low", account=w.account, data={"n": n}) for n, w in enumerate(wallets)]
    with CaptureQueriesContext(connection) as captured, row_buffer() as buffer:
        for entry, event in zip(entries, events, strict=True):
            buffer.insert(entry, event)
    assert len(captured.captured_queries) == 3  # the keys drawn, then one INSERT per model
    keys = [row.pk for pair in zip(entries, events, strict=True) for row in pair]
    assert keys == sorted(keys) and len(set(keys)) == 6
    for entry, event in zip(entries, events, strict=True):
        assert _values(LedgerEntry.objects.get(pk=entry.pk)) == _values(entry)
        assert _values(Event.objects.get(pk=event.pk)) == _values(event)


def test_a_row_buffer_left_by_an_exception_writes_nothing():
    from config.rows import row_buffer

    wallet, entry = _wallet_and_a_grant_of_one()
    with pytest.raises(RuntimeError), row_buffer() as buffer:
        buffer.update(Wallet, wallet.pk, {"balance": Decimal("11.00")})
        buffer.insert(entry)
        raise RuntimeError("the batch failed")
    assert Wallet.objects.get(pk=wallet.pk).balance == Decimal("10.00")
    assert entry.pk is None


def test_table_analyze_refreshes_the_planners_row_estimate():
    from django.db import connection

    from config.rows import table_analyze

    Account.objects.bulk_create([Account(external_id=f"analyze-{n}", name="A") for n in range(500)])
    table_analyze(Account)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [Account._meta.db_table])
        assert cursor.fetchone()[0] >= 500
