"""The events list in the admin: stored events and ledger entries' events together, found by their ids."""

import pytest
from django.db import transaction

from events.models import FeedEvent
from events.services import event_record
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

URL = "/admin/events/feedevent/"


def test_the_list_shows_stored_and_entries_events(admin_client):
    account = funded_account("10.00")
    with transaction.atomic():
        event_record(type="balance.low", account=account, data={"available": "1.00"})
    page = admin_client.get(URL).content.decode()
    assert "grant.created" in page and "balance.low" in page


def test_an_entrys_event_is_found_by_its_id_and_opens_with_the_entry_as_its_data(admin_client):
    account, other = funded_account("10.00"), funded_account("20.00")
    event = FeedEvent.objects.get(account=account)
    page = admin_client.get(URL, {"q": event.public_id}).content.decode()
    assert event.public_id in page and FeedEvent.objects.get(account=other).public_id not in page
    detail = admin_client.get(f"{URL}{event.pk}/change/").content.decode()
    assert "10.00" in detail and event.entry_public_id in detail


def test_an_unknown_event_id_finds_nothing(admin_client):
    funded_account("10.00")
    page = admin_client.get(URL, {"q": "evt_txn_nope"}).content.decode()
    assert "0 events" in page
