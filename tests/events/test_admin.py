"""The events list in the admin: stored events, found by their ids; an entry's event id opens its entry."""

import pytest
from django.db import transaction

from events.models import FeedEvent
from events.services import event_record
from tests.factories import funded_account

pytestmark = pytest.mark.django_db

URL = "/admin/events/event/"


def test_the_list_shows_stored_events(admin_client):
    account = funded_account("10.00")
    with transaction.atomic():
        stored = event_record(type="balance.low", account=account, data={"available": "1.00"})
    page = admin_client.get(URL).content.decode()
    assert stored.public_id in page and "balance.low" in page
    detail = admin_client.get(f"{URL}{stored.pk}/change/").content.decode()
    assert "1.00" in detail


def test_searching_an_entrys_event_id_opens_the_entry_in_the_ledger(admin_client):
    account = funded_account("10.00")
    event = FeedEvent.objects.get(account=account)
    response = admin_client.get(URL, {"q": event.public_id})
    assert response.status_code == 302 and response["Location"].endswith(f"?q={event.entry_public_id}")
    ledger = admin_client.get(response["Location"]).content.decode()
    assert event.entry_public_id in ledger


def test_an_unknown_event_id_finds_nothing(admin_client):
    funded_account("10.00")
    page = admin_client.get(URL, {"q": "evt_nope"}).content.decode()
    assert "evt_nope" in page and "0 events" in page
