"""Fault injection on the real PostgreSQL and Redis.

* A charge whose database backend is killed mid-transaction
  (`pg_terminate_backend`) leaves nothing behind, and the client's retry with
  the same Idempotency-Key charges exactly once.
* The database unreachable: 503 `service_unavailable`, from the view and from
  API key authentication alike, never a 500.
* Redis unreachable: charges still succeed (nothing on the charge path needs it).
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test import override_settings

from billing.core import Posting
from billing.models import IdempotencyRecord, LedgerEntry, Wallet
from tests.factories import default_credit_type, funded_account, service_key

pytestmark = pytest.mark.timeout(60)


def _charge(client, secret: str, account, *, key: str, amount: str = "3.00"):
    return client.post(
        "/api/v1/charges",
        {"account": account.public_id, "amount": amount, "task_id": "job-1"},
        format="json",
        headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": key},
    )


@pytest.mark.django_db(transaction=True)
def test_backend_killed_mid_charge_leaves_no_partial_state_and_retry_charges_once(monkeypatch):
    from rest_framework.test import APIClient

    account = funded_account("10.00")
    _, secret = service_key()
    wallet = Wallet.objects.get(account=account)
    entries_before = LedgerEntry.objects.filter(account=account).count()
    key = f"kill-{uuid.uuid4()}"

    backend_pid: list[int] = []
    paused = threading.Event()
    original = Posting.post
    victim = threading.current_thread  # replaced below by the charging thread

    def append_then_pause(self, **kwargs):
        entry = original(self, **kwargs)
        if threading.current_thread() is victim:
            # Wallet updated and ledger row inserted, not yet committed: stall
            # here until the other connection kills this backend.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend_pid.append(cursor.fetchone()[0])
                paused.set()
                cursor.execute("SELECT pg_sleep(30)")
        return entry

    monkeypatch.setattr(Posting, "post", append_then_pause)
    first: dict = {}

    def first_attempt() -> None:
        try:
            first["response"] = _charge(APIClient(), secret, account, key=key)
        except Exception as exc:  # the test client re-raises what the view did not handle
            first["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=first_attempt)
    victim = thread
    thread.start()
    assert paused.wait(20), "the charge never reached the pause point"
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid[0]])
        assert cursor.fetchone()[0] is True
    thread.join(30)
    assert not thread.is_alive()

    assert "error" not in first, first.get("error")
    assert first["response"].status_code == 503
    assert first["response"].json()["error"]["code"] == "service_unavailable"
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("10.00")
    assert LedgerEntry.objects.filter(account=account).count() == entries_before
    assert not IdempotencyRecord.objects.filter(key=key).exists()

    from rest_framework.test import APIClient as Client

    retry = _charge(Client(), secret, account, key=key)
    again = _charge(Client(), secret, account, key=key)
    assert retry.status_code == 201, retry.json()
    assert again.status_code == 201 and again.json()["id"] == retry.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("7.00")
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 1


class _DatabaseDown:
    """Point the default connection at a port where nothing listens."""

    def __enter__(self):
        connection.close()
        self.saved = dict(connection.settings_dict)
        connection.settings_dict["HOST"] = "127.0.0.1"
        connection.settings_dict["PORT"] = "1"
        connection.settings_dict.setdefault("OPTIONS", {})
        connection.settings_dict["OPTIONS"] = {**connection.settings_dict["OPTIONS"], "connect_timeout": 2}
        return self

    def __exit__(self, *exc):
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(self.saved)


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_answers_503_with_a_code_on_a_charge(api_client):
    account = funded_account("10.00")
    _, secret = service_key()
    with _DatabaseDown():
        response = _charge(api_client, secret, account, key="db-down-1")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"]
    assert Wallet.objects.get(account=account).balance == Decimal("10.00")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/v1/accounts", "/api/v1/accounts/acct_x/balance"])
def test_database_unreachable_during_authentication_is_503_not_500(api_client, path):
    _, secret = service_key()
    with _DatabaseDown():
        response = api_client.get(path, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"


REDIS_DOWN = "redis://127.0.0.1:1/0"


@pytest.mark.django_db(transaction=True)
def test_charges_succeed_with_redis_unreachable(api_client):
    account = funded_account("10.00")
    _, secret = service_key()
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_DOWN,
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=caches, REDIS_URL=REDIS_DOWN, CELERY_BROKER_URL=REDIS_DOWN):
        first = _charge(api_client, secret, account, key="redis-down-1", amount="2.00")
        second = _charge(api_client, secret, account, key="redis-down-2", amount="1.50")
        balance = api_client.get(
            f"/api/v1/accounts/{account.public_id}/balance", headers={"Authorization": f"Bearer {secret}"}
        )
    assert first.status_code == 201, first.json()
    assert second.status_code == 201, second.json()
    assert balance.status_code == 200
    assert Wallet.objects.get(account=account, credit_type=default_credit_type()).balance == Decimal("6.50")
