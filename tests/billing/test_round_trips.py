"""An API charge makes at most 4 database round trips (issue 12, item 7; the list in docs/performance.md).

Counted at the driver (tests/roundtrips.py): BEGIN, COMMIT and the health
check included, statements sent together in pipeline mode counted once. The
connection is kept between requests as in production (`CONN_MAX_AGE`; the
test settings close it after each request).
"""

import uuid
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection
from rest_framework.test import APIClient

from billing.models import IdempotencyRecord, LedgerEntry, Wallet
from tests.factories import funded_account, service_key
from tests.roundtrips import OUTSIDE_DJANGO, count_round_trips

pytestmark = pytest.mark.django_db(transaction=True)  # real BEGIN and COMMIT, as in production


@pytest.fixture
def persistent_connection(settings):
    # As in production, each process remembers for a while which event types an endpoint receives
    # (webhooks.selectors.subscribed_event_types); the tests' settings turn that off.
    settings.CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S = 60
    saved = connection.settings_dict["CONN_MAX_AGE"], connection.settings_dict["CONN_HEALTH_CHECKS"]
    connection.settings_dict["CONN_MAX_AGE"], connection.settings_dict["CONN_HEALTH_CHECKS"] = 60, True
    connection.close()
    yield
    connection.settings_dict["CONN_MAX_AGE"], connection.settings_dict["CONN_HEALTH_CHECKS"] = saved
    connection.close()


@pytest.fixture
def service():
    _, secret = service_key()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def _charge(client: APIClient, account, amount: str = "0.01"):
    # What a request does first in production; the test client leaves it out.
    close_old_connections()
    return client.post(
        "/api/v1/charges",
        {"account": account.public_id, "amount": amount},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )


def test_an_api_charge_makes_at_most_four_round_trips(persistent_connection, service):
    account = funded_account("10.00")
    _charge(service, account)  # warm: a connection, the key's last_used_at write
    with count_round_trips() as trips:
        response = _charge(service, account)
    assert response.status_code == 201
    assert LedgerEntry.objects.filter(public_id=response.json()["id"]).exists()
    assert len(trips) <= 4, trips.describe()


def test_a_pipelined_decline_changes_nothing_and_is_stored(persistent_connection, service):
    account = funded_account("1.00")
    first = _charge(service, account, amount="5.00")
    assert first.status_code == 402
    assert Wallet.objects.get(account=account).balance == Decimal("1.00")
    assert IdempotencyRecord.objects.filter(account=account, response_status=402).count() == 1


def test_a_connection_idle_for_a_while_is_health_checked_first(persistent_connection, service, settings):
    account = funded_account("10.00")
    _charge(service, account)
    connection.request_finished_at -= settings.DATABASE_HEALTH_CHECK_IDLE_S + 1
    with count_round_trips() as trips:
        response = _charge(service, account)
    assert response.status_code == 201
    assert trips.trips[0] == [OUTSIDE_DJANGO]
    assert len(trips) <= 5, trips.describe()  # the check adds one round trip at most


def test_a_pipelined_charge_replays_its_first_answer_byte_for_byte_and_charges_once(persistent_connection, service):
    account = funded_account("10.00")
    body = {"account": account.public_id, "amount": "1.00", "metadata": {"b": 1, "a": 2}}
    first = service.post("/api/v1/charges", body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    close_old_connections()
    again = service.post("/api/v1/charges", body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert LedgerEntry.objects.filter(account=account).count() == 2  # the funding grant and one charge
    assert Wallet.objects.get(account=account).balance == Decimal("9.00")


def test_the_entry_of_a_pipelined_charge_gets_its_key_with_the_commit(persistent_connection, service, monkeypatch):
    from billing.services import charges

    seen = []
    original = charges.charge_create

    def keep(**kwargs):
        entry = original(**kwargs)
        seen.append(entry)
        return entry

    monkeypatch.setattr(charges, "charge_create", keep)
    monkeypatch.setattr("billing.services.charge_create", keep)
    response = _charge(service, funded_account("10.00"))
    assert response.status_code == 201
    assert seen and seen[0].pk == LedgerEntry.objects.get(public_id=response.json()["id"]).pk


def test_a_batch_over_ten_wallets_makes_six_round_trips_whatever_its_wallets(persistent_connection, service):
    accounts = [funded_account("10.00") for _ in range(10)]
    items = [
        {"account": a.public_id, "amount": "0.01", "idempotency_key": uuid.uuid4().hex}
        for a in accounts
        for _ in range(2)
    ]

    def batch():
        close_old_connections()
        return service.post(
            "/api/v1/charges/batch", {"items": items}, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
        )

    assert batch().status_code == 200
    for item in items:
        item["idempotency_key"] = uuid.uuid4().hex
    with count_round_trips() as trips:
        response = batch()
    assert response.status_code == 200
    assert {item["status"] for item in response.json()["data"]} == {201}
    # The key, the accounts, BEGIN, the claims (the batch's own with its items'), one lock for every
    # wallet (billing.core.postings_for_debit), then every posting with every answer and COMMIT.
    assert len(trips) <= 6, trips.describe()


def test_a_batch_whose_charges_fire_an_alert_makes_one_round_trip_more(persistent_connection, service):
    # The alert is a stored event; its key and the entries' are drawn from their shared sequence in the
    # order they happened (config.rows.row_ids_shared): one statement that waits for its answer.
    from billing.alerts import wallet_alerts_set
    from events.models import FeedEvent
    from tests.factories import default_credit_type

    accounts = [funded_account("10.00") for _ in range(10)]
    for account in accounts:
        wallet_alerts_set(account=account, credit_type=default_credit_type(), low_balance=Decimal("9.98"))

    def batch(amount: str):
        items = [{"account": a.public_id, "amount": amount, "idempotency_key": uuid.uuid4().hex} for a in accounts]
        close_old_connections()
        return service.post(
            "/api/v1/charges/batch", {"items": items}, format="json", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
        )

    assert batch("0.01").status_code == 200  # warm: the key's last use, the credit type; no alert (9.99 left)
    with count_round_trips() as trips:
        response = batch("0.01")  # 9.98: on the threshold, every wallet's balance.low fires
    assert {item["status"] for item in response.json()["data"]} == {201}
    assert FeedEvent.objects.filter(type="balance.low").count() == 10
    assert len(trips) <= 7, trips.describe()
