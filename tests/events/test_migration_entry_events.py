"""billing 0019 (an entry's event is the entry) reverses without losing events."""

import pytest
from django.db import connection

from events.models import Event, FeedEvent
from tests.factories import charge_for, funded_account
from tests.migrations import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)


def test_reversing_keeps_each_entrys_event_as_a_stored_event_with_its_id():
    account = funded_account("10.00")
    charge_for(account, "2.50")
    before = list(FeedEvent.objects.filter(account=account).order_by("id").values_list("id", "public_id", "type"))
    migrate([("billing", "0018_wallet_recharge_below")])
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, public_id, type, data->>'amount' FROM events_event ORDER BY id")
            stored = cursor.fetchall()
    finally:
        migrate_to_latest()
    assert [row[:3] for row in stored] == before
    assert [row[3] for row in stored] == ["10.00", "-2.50"]
    # Forward again: they stay stored events, listed once, and new ids continue above them.
    assert list(FeedEvent.objects.filter(account=account).order_by("id").values_list("id", "public_id", "type")) == (
        before
    )
    later = charge_for(account, "1.00")
    assert later.pk > max(Event.objects.values_list("id", flat=True))
