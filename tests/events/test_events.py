"""Events: recorded in the transaction of their change, listed and read through the API, purged after 30 days."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from billing.core import Actor
from billing.exceptions import InsufficientCredits
from billing.models import LedgerEntry, OutboxMessage
from billing.services import hold_capture, hold_release
from events.models import Event, FeedEvent
from events.services import event_materialize, event_record, events_purge_expired
from refunds.services import refund_issue
from tests.factories import (
    AccountFactory,
    account_key,
    charge_for,
    funded_account,
    hold_for,
    service_key,
)
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def types_of(account) -> list[str]:
    return list(FeedEvent.objects.filter(account=account).order_by("id").values_list("type", flat=True))


def test_a_charge_records_charge_created_with_the_entry_as_the_api_shows_it(service):
    account = funded_account("10.00")
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "2.50"}, format="json")
    event = FeedEvent.objects.get(type="charge.created", account=account)
    assert event.data == response.json()
    assert event.public_id.startswith("evt_") and event.api_version == "v1"


def test_a_charges_event_is_its_ledger_entry_not_a_row_of_its_own(service):
    account = funded_account("10.00")
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "2.50"}, format="json")
    entry_id = response.json()["id"]
    assert LedgerEntry.objects.get(public_id=entry_id).event_type == "charge.created"
    assert not Event.objects.exists()  # no stored event: the entry is the event
    event = FeedEvent.objects.get(type="charge.created", account=account)
    assert event.public_id == f"evt_{entry_id}" and event.entry_public_id == entry_id


def test_stored_events_and_entries_events_share_one_order(service):
    account = funded_account("10.00")
    hold = hold_for(account, "1.00")
    charge_for(account, "1.00")
    entry_ids = list(LedgerEntry.objects.filter(account=account).order_by("id").values_list("id", flat=True))
    stored = Event.objects.get(type="hold.created")
    assert entry_ids[0] < stored.id < entry_ids[1]  # one sequence numbers both
    listed = service.get("/api/v1/events", {"account": account.public_id}).json()["data"]
    assert [e["type"] for e in listed] == ["charge.created", "hold.created", "grant.created"]
    assert listed[1]["data"]["id"] == hold.public_id


def test_a_grant_records_grant_created():
    account = funded_account("10.00")
    assert types_of(account) == ["grant.created"]
    assert FeedEvent.objects.get(account=account).data["amount"] == "10.00"


def test_holds_record_created_captured_and_released():
    account = funded_account("10.00")
    captured = hold_for(account, "3.00")
    hold_capture(hold=captured, amount=Decimal("2.00"), actor=Actor.system())
    released = hold_for(account, "1.00")
    hold_release(hold=released, actor=Actor.system())
    assert types_of(account) == ["grant.created", "hold.created", "hold.captured", "hold.created", "hold.released"]
    captured_event = FeedEvent.objects.get(type="hold.captured", account=account)
    assert captured_event.data["status"] == "captured" and captured_event.data["captured_amount"] == "2.00"


def test_a_refund_records_refund_created():
    account = funded_account("10.00")
    charge = charge_for(account, "4.00")
    refund_issue(charge=charge, amount=Decimal("1.00"), reason="api_error", actor=Actor.system())
    event = FeedEvent.objects.get(type="refund.created", account=account)
    assert event.data["amount"] == "1.00" and event.data["charge"] == charge.public_id


def test_a_declined_charge_records_charge_declined_through_the_api(service):
    account = funded_account("1.00")
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "5.00"}, format="json")
    assert response.status_code == 402
    event = FeedEvent.objects.get(type="charge.declined", account=account)
    assert event.data["amount"] == "5.00" and event.data["code"] == "insufficient_credits"
    assert not FeedEvent.objects.filter(type="charge.created", account=account).exists()


@pytest.mark.django_db(transaction=True)
def test_a_declined_charge_called_on_its_own_records_charge_declined():
    account = funded_account("1.00")
    with pytest.raises(InsufficientCredits):
        charge_for(account, "5.00")
    assert FeedEvent.objects.filter(type="charge.declined", account=account).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_event_and_nothing_to_deliver(service):
    from webhooks.services import endpoint_create

    endpoint_create(url="http://127.0.0.1:9/never", event_types=["charge.created"])
    account = funded_account("10.00")
    before = OutboxMessage.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        charge_for(account, "2.00")
        raise RuntimeError("the caller fails after the charge")
    assert not FeedEvent.objects.filter(type="charge.created").exists()
    assert OutboxMessage.objects.count() == before
    assert not WebhookDelivery.objects.exists()


def test_event_record_refuses_an_unknown_type():
    with pytest.raises(ValueError, match=r"events/types\.py"), transaction.atomic():
        event_record(type="nothing.happened", account=None, data={})


@pytest.mark.django_db(transaction=True)
def test_event_record_refuses_to_run_outside_a_transaction():
    # Committing alone would break "an event exists if and only if its change committed".
    with pytest.raises(RuntimeError, match="inside the transaction"):
        event_record(type="grant.created", account=None, data={})


# --- the API -------------------------------------------------------------------------


def test_the_list_is_newest_first_and_filters_by_type_and_account(service):
    first, second = funded_account("10.00"), funded_account("10.00")
    charge_for(first, "1.00")
    body = service.get("/api/v1/events").json()
    assert [e["type"] for e in body["data"]][:3] == ["charge.created", "grant.created", "grant.created"]
    by_type = service.get("/api/v1/events", {"type": "charge.created"}).json()["data"]
    assert [e["account"] for e in by_type] == [first.public_id]
    by_account = service.get("/api/v1/events", {"account": second.public_id}).json()["data"]
    assert [e["type"] for e in by_account] == ["grant.created"]


def test_the_list_filters_by_created_range(service):
    account = funded_account("10.00")
    since = timezone.now().isoformat()
    charge_for(account, "1.00")
    recent = service.get("/api/v1/events", {"account": account.public_id, "created_after": since}).json()["data"]
    assert [e["type"] for e in recent] == ["charge.created"]
    older = service.get("/api/v1/events", {"account": account.public_id, "created_before": since}).json()["data"]
    assert [e["type"] for e in older] == ["grant.created"]


def test_the_list_is_cursor_paginated(service):
    account = funded_account("10.00")
    for _ in range(3):
        charge_for(account, "1.00")
    page = service.get("/api/v1/events", {"account": account.public_id, "limit": 2}).json()
    assert page["has_more"] and len(page["data"]) == 2
    rest = service.get("/api/v1/events", {"account": account.public_id, "limit": 2, "cursor": page["next_cursor"]})
    assert len(rest.json()["data"]) == 2 and not rest.json()["has_more"]


def test_pages_of_one_walk_stored_and_entries_events_in_order(service):
    account = funded_account("10.00")
    hold = hold_for(account, "1.00")
    charge_for(account, "1.00")
    hold_release(hold=hold, actor=Actor.system())
    charge_for(account, "2.00")
    whole = [e["id"] for e in service.get("/api/v1/events", {"account": account.public_id}).json()["data"]]
    walked, cursor = [], None
    while True:
        params = {"account": account.public_id, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = service.get("/api/v1/events", params).json()
        walked += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert walked == whole and len(whole) == 5


def test_the_list_reads_each_table_newest_first_never_the_union(service):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    account = funded_account("10.00")
    charge_for(account, "1.00")
    with CaptureQueriesContext(connection) as captured:
        assert service.get("/api/v1/events", {"limit": 1}).status_code == 200
    statements = [q["sql"] for q in captured.captured_queries]
    assert not [sql for sql in statements if "events_feed" in sql]
    pages = [sql for sql in statements if 'ORDER BY "billing_ledgerentry"."id" DESC LIMIT' in sql]
    assert len(pages) == 1 and pages[0].endswith("LIMIT 2")  # a page and one more, read down the primary key
    with connection.cursor() as cursor:
        # Tiny test tables favour scanning and sorting; with those priced out, the plan shows whether the page
        # can be read in order from an index and stop (a Sort would remain if it could not).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + pages[0])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Sort" not in plan, plan


def test_an_account_key_sees_only_its_own_events(api_client):
    mine, other = funded_account("10.00"), funded_account("10.00")
    _, secret = account_key(mine)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    listed = api_client.get("/api/v1/events").json()["data"]
    assert {e["account"] for e in listed} == {mine.public_id}
    other_event = FeedEvent.objects.get(account=other)
    assert api_client.get(f"/api/v1/events/{other_event.public_id}").status_code == 404
    assert api_client.get("/api/v1/events", {"account": other.public_id}).status_code == 404


def test_an_event_is_read_by_its_id(service):
    account = funded_account("10.00")
    event = FeedEvent.objects.get(account=account)
    body = service.get(f"/api/v1/events/{event.public_id}").json()
    assert body["id"] == event.public_id and body["type"] == "grant.created" and body["account"] == account.public_id
    assert body["data"]["amount"] == "10.00"


def test_a_charges_event_is_read_by_its_id_with_the_entry_as_the_api_shows_it(service):
    account = funded_account("10.00")
    charged = service.post("/api/v1/charges", {"account": account.public_id, "amount": "2.50"}, format="json").json()
    body = service.get(f"/api/v1/events/evt_{charged['id']}").json()
    assert body["id"] == f"evt_{charged['id']}" and body["type"] == "charge.created"
    assert body["data"] == charged


def test_an_entry_without_an_event_has_no_event_id(service):
    account = funded_account("10.00")
    hold = hold_for(account, "3.00")
    hold_capture(hold=hold, amount=Decimal("2.00"), actor=Actor.system())  # reported by hold.captured
    capture = LedgerEntry.objects.get(account=account, kind="charge")
    assert capture.event_type is None
    assert service.get(f"/api/v1/events/evt_{capture.public_id}").status_code == 404


def test_an_unknown_event_is_404_event_not_found(service):
    response = service.get("/api/v1/events/evt_nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "event_not_found"


def test_an_unknown_type_filter_is_400(service):
    assert service.get("/api/v1/events", {"type": "nope"}).status_code == 400


# --- retention ---------------------------------------------------------------------


def test_entries_events_past_retention_are_no_longer_listed_or_read(service, settings):
    account = funded_account("10.00")
    event = FeedEvent.objects.get(account=account)
    assert service.get(f"/api/v1/events/{event.public_id}").status_code == 200
    settings.CREDITLEDGER_EVENTS_RETENTION_DAYS = 0  # everything recorded before now is past retention
    assert service.get("/api/v1/events", {"account": account.public_id}).json()["data"] == []
    assert service.get(f"/api/v1/events/{event.public_id}").status_code == 404


def test_an_entrys_event_copied_for_a_delivery_is_the_same_event_and_listed_once():
    account = funded_account("10.00")
    feed = FeedEvent.objects.get(account=account)
    copy = event_materialize(feed.public_id)
    assert event_materialize(feed.public_id) == copy  # a second call finds the copy
    fields = ("pk", "public_id", "type", "created_at", "account_id", "entry_id", "data")
    assert [getattr(copy, f) for f in fields] == [getattr(feed, f) for f in fields]
    assert Event.objects.count() == 1 and FeedEvent.objects.filter(account=account).count() == 1


def test_a_stored_event_is_found_by_its_id_for_a_delivery():
    account = AccountFactory()
    with transaction.atomic():
        stored = event_record(type="balance.low", account=account, data={"n": 1})
    assert event_materialize(stored.public_id) == stored
    assert event_materialize("evt_txn_nope") is None and event_materialize("evt_nope") is None


def test_events_older_than_thirty_days_are_purged():
    account = AccountFactory()
    with transaction.atomic():
        old = event_record(type="grant.created", account=account, data={})
        kept = event_record(type="grant.created", account=account, data={})
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert events_purge_expired() == 1
    assert list(Event.objects.filter(account=account)) == [kept]
