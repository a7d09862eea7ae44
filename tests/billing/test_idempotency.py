"""Idempotency-Key on money-moving POSTs, Stripe-style."""

from decimal import Decimal

import pytest

from billing.models import IdempotencyRecord, LedgerEntry, Wallet
from tests.client import KeyedAPIClient as APIClient
from tests.concurrency import run_concurrently
from tests.factories import funded_account, service_key


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def charge(client, account, amount="1.00", key="key-1", **extra):
    return client.post(
        "/api/v1/charges",
        {"account": account.public_id, "amount": amount, **extra},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


@pytest.mark.django_db
def test_retry_replays_first_answer_without_charging_again():
    _, secret = service_key()
    client = client_for(secret)
    account = funded_account("10.00")
    first = charge(client, account)
    again = charge(client, account)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 1


@pytest.mark.django_db
def test_reuse_with_different_amount_is_409_reused():
    _, secret = service_key()
    client = client_for(secret)
    account = funded_account("10.00")
    charge(client, account, amount="1.00")
    response = charge(client, account, amount="2.00")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.django_db
def test_reuse_on_another_endpoint_is_409_reused():
    _, secret = service_key()
    client = client_for(secret)
    account = funded_account("10.00")
    charge(client, account, amount="1.00")
    response = client.post(
        "/api/v1/grants", {"account": account.public_id, "amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.django_db
def test_a_declined_charge_stays_declined_on_retry_after_top_up():
    _, secret = service_key()
    client = client_for(secret)
    account = funded_account("1.00")
    declined = charge(client, account, amount="5.00")
    assert declined.status_code == 402
    client.post("/api/v1/grants", {"account": account.public_id, "amount": "10.00"}, format="json")
    retry = charge(client, account, amount="5.00")
    assert retry.status_code == 402 and retry.json() == declined.json()
    fresh = charge(client, account, amount="5.00", key="key-2")
    assert fresh.status_code == 201


@pytest.mark.django_db
def test_validation_failure_stores_nothing():
    _, secret = service_key()
    client = client_for(secret)
    account = funded_account("10.00")
    bad = charge(client, account, amount="-1")
    assert bad.status_code == 400
    assert IdempotencyRecord.objects.count() == 0
    good = charge(client, account, amount="1.00")
    assert good.status_code == 201


@pytest.mark.django_db
def test_keys_are_scoped_to_the_calling_api_key():
    _, secret_a = service_key()
    _, secret_b = service_key()
    account = funded_account("10.00")
    charge(client_for(secret_a), account)
    other = charge(client_for(secret_b), account)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "has space"])
def test_malformed_idempotency_key_is_400(key):
    _, secret = service_key()
    account = funded_account("10.00")
    response = charge(client_for(secret), account, key=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert LedgerEntry.objects.filter(kind="charge").count() == 0


@pytest.mark.django_db
def test_255_character_key_is_accepted():
    _, secret = service_key()
    account = funded_account("10.00")
    assert charge(client_for(secret), account, key="k" * 255).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_duplicates_charge_once():
    _, secret = service_key()
    account = funded_account("100.00")

    def attempt(i):
        response = charge(client_for(secret), account, amount="3.00", key="same-key")
        return response.status_code, response.json()

    results = run_concurrently(attempt, 20)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 1
    created = [body for status, body in results if status == 201]
    in_use = [body for status, body in results if status == 409]
    assert len(created) + len(in_use) == 20
    assert all(body["error"]["code"] == "idempotency_key_in_use" for body in in_use)
    first = created[0]
    assert all(body == first for body in created)
    assert Wallet.objects.get(account=account).balance == Decimal("97.00")
    later = charge(client_for(secret), account, amount="3.00", key="same-key")
    assert later.status_code == 201 and later.json() == first
    reused = charge(client_for(secret), account, amount="4.00", key="same-key")
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"


def _hold_row_lock(sql: str, params: list):
    """Another connection that takes a row lock with `sql` and keeps it until closed."""
    import psycopg
    from django.db import connection

    dsn = connection.settings_dict
    other = psycopg.connect(
        host=dsn["HOST"], port=dsn["PORT"] or 5432, user=dsn["USER"], dbname=dsn["NAME"], password=dsn["PASSWORD"]
    )
    other.execute(sql, params)
    return other


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_still_running_past_the_lock_timeout_is_409_in_use(settings):
    settings.IDEMPOTENCY_LOCK_TIMEOUT_MS = 200
    api_key, secret = service_key()
    account = funded_account("10.00")
    # The first request's claim, not yet committed.
    first = _hold_row_lock(
        "INSERT INTO billing_idempotencyrecord (account_id, api_key_id, key, endpoint, request_hash, created_at) "
        "VALUES (%s, %s, 'busy-key', 'POST /api/v1/charges', 'x', now())",
        [account.pk, api_key.pk],
    )
    try:
        response = charge(client_for(secret), account, key="busy-key")
    finally:
        first.close()
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert Wallet.objects.get(account=account).balance == Decimal("10.00")


@pytest.mark.django_db(transaction=True)
def test_a_wallet_locked_past_the_lock_timeout_is_503_and_the_retry_charges_once(settings):
    settings.IDEMPOTENCY_LOCK_TIMEOUT_MS = 200
    _, secret = service_key()
    account = funded_account("10.00")
    blocker = _hold_row_lock("SELECT id FROM billing_wallet WHERE account_id = %s FOR UPDATE", [account.pk])
    try:
        response = charge(client_for(secret), account, key="retry-key")
    finally:
        blocker.close()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "lock_timeout" and response["Retry-After"] == "1"
    assert not IdempotencyRecord.objects.filter(key="retry-key").exists()
    assert Wallet.objects.get(account=account).balance == Decimal("10.00")
    retry = charge(client_for(secret), account, key="retry-key")
    assert retry.status_code == 201
    assert Wallet.objects.get(account=account).balance == Decimal("9.00")


@pytest.mark.django_db
def test_a_decline_replays_a_duplicates_answer_recorded_while_it_rolled_back(monkeypatch):
    from billing import idempotency

    api_key, secret = service_key()
    account = funded_account("1.00")
    original = idempotency._record_decline

    def duplicate_answers_first(claim, error, **kwargs):
        # A duplicate with the same key claimed it and committed its answer
        # between this request's rollback and its second claim.
        IdempotencyRecord.objects.create(
            account_id=claim["account_id"],
            api_key=api_key,
            key=claim["key"],
            endpoint=claim["endpoint"],
            request_hash=claim["fingerprint"],
            response_status=201,
            response_body={"from": "duplicate"},
        )
        return original(claim, error, **kwargs)

    monkeypatch.setattr(idempotency, "_record_decline", duplicate_answers_first)
    response = charge(client_for(secret), account, amount="5.00", key="raced")
    assert response.status_code == 201 and response.json() == {"from": "duplicate"}
    assert response["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.filter(key="raced").count() == 1
    assert Wallet.objects.get(account=account).balance == Decimal("1.00")


@pytest.mark.django_db
def test_keys_are_scoped_to_the_account_so_the_same_key_on_another_account_is_another_request():
    _, secret = service_key()
    client = client_for(secret)
    alice, bob = funded_account("10.00"), funded_account("10.00")
    first = charge(client, alice, key="shared-key")
    other = charge(client, bob, key="shared-key")
    assert first.status_code == other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert first.json()["account"] == alice.public_id and other.json()["account"] == bob.public_id
    assert IdempotencyRecord.objects.get(account=alice, key="shared-key").response_status == 201
    assert IdempotencyRecord.objects.get(account=bob, key="shared-key").response_status == 201


@pytest.mark.django_db
def test_a_replay_is_the_first_answer_byte_for_byte():
    _, secret = service_key()
    client = client_for(secret)
    account = funded_account("10.00")
    # Keys a JSONB column would reorder (it sorts by length, then bytes) and text it would re-escape.
    extra = {"metadata": {"zz": 1, "a": "ünïcode \u2028", "mm": [3, 2, 1], "b": {"y": 1, "x": 2}}, "task_id": "t-1"}
    first = charge(client, account, key="bytes-1", **extra)
    again = charge(client, account, key="bytes-1", **extra)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    record = IdempotencyRecord.objects.get(key="bytes-1")
    assert bytes(record.response_raw) == first.content


@pytest.mark.django_db
def test_a_replayed_decline_is_byte_for_byte_too():
    _, secret = service_key()
    client = client_for(secret)
    account = funded_account("1.00")
    first = charge(client, account, amount="5.00", key="bytes-402")
    again = charge(client, account, amount="5.00", key="bytes-402")
    assert first.status_code == again.status_code == 402
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_record_from_before_raw_bytes_still_replays():
    _, secret = service_key()
    client = client_for(secret)
    account = funded_account("10.00")
    first = charge(client, account, key="legacy-1")
    IdempotencyRecord.objects.filter(key="legacy-1").update(response_raw=None, response_body=first.json())
    again = charge(client, account, key="legacy-1")
    assert again.status_code == 201 and again.json() == first.json()
