"""The balance display cache: fresh after every change, never trusted for a charge, optional.

These tests commit (transaction=True): invalidation runs in
`transaction.on_commit`, and reads inside a transaction bypass the cache.
"""

from __future__ import annotations

import socket
import subprocess
import time
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import override_settings

from billing.models import Wallet
from billing.services import Actor, grant_create, hold_create
from tests.client import KeyedAPIClient as APIClient
from tests.factories import default_credit_type, funded_account, service_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def service() -> APIClient:
    _, secret = service_key()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def balance(client: APIClient, account, **query) -> tuple[dict, str]:
    response = client.get(f"/api/v1/accounts/{account.public_id}/balance", query)
    assert response.status_code == 200, response.content
    row = next(b for b in response.json()["balances"] if b["credit_type"] == "credits")
    return row, response["Balance-Source"]


def raw_set_balance(account, value: str) -> None:
    """Change the stored balance behind the services' back: nothing invalidates the cache."""
    wallet = Wallet.objects.get(account=account, credit_type=default_credit_type())
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_wallet SET balance = %s WHERE id = %s", [value, wallet.pk])


def test_second_read_is_served_from_the_cache(service):
    account = funded_account("10.00")
    first, first_source = balance(service, account)
    second, second_source = balance(service, account)
    assert first_source == "database" and second_source == "cache"
    assert first == second
    assert (first["balance"], first["held"], first["available"]) == ("10.00", "0.00", "10.00")


def test_after_a_grant_the_next_read_shows_it(service):
    account = funded_account("10.00")
    balance(service, account)
    assert balance(service, account)[1] == "cache"
    response = service.post("/api/v1/grants", {"account": account.public_id, "amount": "5.00"}, format="json")
    assert response.status_code == 201
    row, _ = balance(service, account)
    assert row["balance"] == "15.00"


def test_after_a_charge_or_a_hold_the_next_read_shows_it(service):
    account = funded_account("10.00")
    balance(service, account)
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "2.50"}, format="json")
    assert response.status_code == 201
    assert balance(service, account)[0]["balance"] == "7.50"
    hold_create(account=account, credit_type=default_credit_type(), amount="1.00", actor=Actor.system())
    row, _ = balance(service, account)
    assert row["held"] == "1.00" and row["available"] == "6.50"


def test_refresh_true_reads_the_database(service):
    account = funded_account("10.00")
    balance(service, account)
    raw_set_balance(account, "3.00")
    assert balance(service, account) == (balance(service, account)[0], "cache")
    assert balance(service, account)[0]["balance"] == "10.00"  # the cache cannot know about raw SQL
    row, source = balance(service, account, refresh="true")
    assert source == "database" and row["balance"] == "3.00"


def test_refresh_must_be_a_boolean(service):
    account = funded_account("10.00")
    response = service.get(f"/api/v1/accounts/{account.public_id}/balance", {"refresh": "soon"})
    assert response.status_code == 400


def test_a_stale_cached_balance_never_lets_a_charge_through(service):
    account = funded_account("10.00")
    balance(service, account)
    raw_set_balance(account, "1.00")
    row, source = balance(service, account)
    assert source == "cache" and row["available"] == "10.00"  # stale on purpose
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "5.00"}, format="json")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert Wallet.objects.get(account=account).balance == Decimal("1.00")


def test_a_read_racing_a_change_cannot_leave_a_stale_body_behind(service):
    """A reader that loaded the old balance and stores it after the change's invalidation stores it
    under a retired version: the next read goes to the database."""
    from billing import balance_cache

    account = funded_account("10.00")

    def load_then_change() -> dict:
        body = {"account": account.public_id, "balances": [{"credit_type": "credits", "balance": "10.00"}]}
        grant_create(account=account, credit_type=default_credit_type(), amount="5.00", actor=Actor.system())
        return body  # the old body, returned after the change committed and invalidated

    balance_cache.balance_display(account=account.public_id, load=load_then_change)
    row, source = balance(service, account)
    assert source == "database" and row["balance"] == "15.00"


# --- Redis down --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def caches_at(url: str) -> dict:
    return {"default": {**settings.CACHES["default"], "LOCATION": url}}


@pytest.fixture
def private_redis():
    """A redis-server of this test's own, so stopping it leaves the shared one alone."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)
    yield {"url": f"redis://127.0.0.1:{port}/0", "process": process}
    process.kill()
    process.wait(timeout=10)


def test_redis_stopped_mid_test_leaves_charges_and_balance_reads_working(service, private_redis):
    account = funded_account("10.00")
    with override_settings(CACHES=caches_at(private_redis["url"])):
        balance(service, account)
        assert balance(service, account)[1] == "cache"

        private_redis["process"].terminate()
        private_redis["process"].wait(timeout=10)

        started = time.monotonic()
        response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "2.50"}, format="json")
        assert response.status_code == 201, response.content
        assert time.monotonic() - started < 3  # no long hang on the dead cache
        row, source = balance(service, account)
        assert source == "database" and row["balance"] == "7.50"
        grant = service.post("/api/v1/grants", {"account": account.public_id, "amount": "1.00"}, format="json")
        assert grant.status_code == 201
        assert balance(service, account)[0]["balance"] == "8.50"


def test_with_no_redis_at_all_charges_and_reads_work(service):
    account = funded_account("10.00")
    with override_settings(CACHES=caches_at("redis://127.0.0.1:1/0")):
        response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "1.00"}, format="json")
        assert response.status_code == 201
        row, source = balance(service, account)
        assert source == "database" and row["balance"] == "9.00"


def _versions(*accounts) -> list:
    from django.core.cache import cache

    from billing.balance_cache import _version_key

    return [cache.get(_version_key(account.public_id)) for account in accounts]


def test_every_account_a_transaction_changed_is_retired_after_its_commit(service):
    from django.db import transaction

    first, second, third = funded_account("10.00"), funded_account("10.00"), funded_account("10.00")
    for account in (first, second, third):
        balance(service, account)
    before = _versions(first, second, third)
    with transaction.atomic():
        for account in (first, second, first):
            grant_create(account=account, credit_type=default_credit_type(), amount="1.00", actor=Actor.system())
        assert _versions(first, second, third) == before  # nothing retired before the commit
    after = _versions(first, second, third)
    assert after[0] != before[0] and after[1] != before[1]
    assert after[2] == before[2]
    assert balance(service, first)[0]["balance"] == "12.00"
    assert balance(service, second)[0]["balance"] == "11.00"


def test_an_account_changed_after_a_rolled_back_savepoint_is_still_retired(service):
    from django.db import transaction

    first, second = funded_account("10.00"), funded_account("10.00")
    for account in (first, second):
        balance(service, account)
    before = _versions(first, second)
    with transaction.atomic():
        try:
            with transaction.atomic():  # its invalidation callback goes with it
                grant_create(account=first, credit_type=default_credit_type(), amount="1.00", actor=Actor.system())
                raise RuntimeError("roll this savepoint back")
        except RuntimeError:
            pass
        grant_create(account=second, credit_type=default_credit_type(), amount="1.00", actor=Actor.system())
    after = _versions(first, second)
    assert after[1] != before[1]
    assert balance(service, second)[0]["balance"] == "11.00"
    assert balance(service, first)[0]["balance"] == "10.00"


def test_a_rolled_back_transaction_retires_nothing(service):
    from django.db import transaction

    account = funded_account("10.00")
    balance(service, account)
    before = _versions(account)
    with pytest.raises(RuntimeError), transaction.atomic():
        grant_create(account=account, credit_type=default_credit_type(), amount="1.00", actor=Actor.system())
        raise RuntimeError("roll back")
    assert _versions(account) == before
    assert balance(service, account)[1] == "cache"
