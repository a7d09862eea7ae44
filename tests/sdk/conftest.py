"""Fixtures for the Python client's tests: a live gunicorn on the test database.

The server runs for the whole `tests/sdk` package. What it needs to see is
committed: the service key and a price (made by the package fixture), and
everything the tests create through the SDK. The tests are plain
`django_db` tests, so their own ORM reads (the checks) see what the server
committed, and they never flush between tests (a flush would recreate the
`credits` credit type under a new id while the server's processes cache the
old one). The package fixture truncates the database when the package is
done, as a transactional test leaves it.
"""

from __future__ import annotations

import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[2] / "sdk" / "python"
if str(SDK) not in sys.path:
    sys.path.insert(0, str(SDK))  # the checkout's SDK, installed or not

import creditledger  # noqa: E402

from tests.sdk.server import DroppingProxy, LiveServer  # noqa: E402


class Ledger:
    """The live server and its service key."""

    def __init__(self, server: LiveServer, service_key: str) -> None:
        self.server = server
        self.url = server.url
        self.service_key = service_key

    def client(self, key: str | None = None, **kwargs) -> creditledger.Client:
        kwargs.setdefault("base_url", self.url)
        kwargs.setdefault("retry", fast_retry())
        return creditledger.Client(key or self.service_key, **kwargs)

    def async_client(self, key: str | None = None, **kwargs) -> creditledger.AsyncClient:
        kwargs.setdefault("base_url", self.url)
        kwargs.setdefault("retry", fast_retry())
        return creditledger.AsyncClient(key or self.service_key, **kwargs)


def fast_retry(**kwargs) -> creditledger.RetryPolicy:
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    return creditledger.RetryPolicy(**kwargs)


PRICE_KEY = "sdktest/model"  # 2.5 per 1K input tokens, 10 per 1K output tokens


@pytest.fixture(scope="package")
def ledger(django_db_setup, django_db_blocker):
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from tests.factories import PriceFactory, service_key
    from tests.processes import child_database_url

    with django_db_blocker.unblock():
        PriceFactory(key=PRICE_KEY, per_1k_input_tokens=Decimal("2.5"), per_1k_output_tokens=Decimal("10"))
        _, secret = service_key()
        database_url = child_database_url()
        connection.close()
    server = LiveServer(database_url, settings.REDIS_URL)
    try:
        yield Ledger(server, secret)
    finally:
        server.stop()
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)
            connection.close()


@pytest.fixture
def client(ledger):
    with ledger.client() as client:
        yield client


@pytest.fixture
def account(client):
    """A new account funded with 100.00 credits (through the API)."""
    created = client.accounts.create(f"sdk-{uuid.uuid4()}", name="SDK test")
    client.grants.create(created.id, Decimal("100.00"), reason="sdk test funding")
    return created


@pytest.fixture
def proxy(ledger):
    proxy = DroppingProxy(ledger.server.port, drop=1)
    yield proxy
    proxy.close()


def available(client, account_id: str, credit_type: str = "credits") -> Decimal:
    return client.accounts.balance(account_id, refresh=True).for_credit_type(credit_type).available
