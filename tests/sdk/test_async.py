"""The asyncio client against the live server: the basic path and both helpers."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import creditledger
import httpx
import pytest

from billing.models import Hold
from refunds.models import RefundLog

pytestmark = pytest.mark.django_db


def test_async_client_basic_path(ledger):
    async def scenario():
        async with ledger.async_client() as client:
            account = await client.accounts.create(f"sdk-async-{uuid.uuid4()}")
            await client.grants.create(account.id, "20.00", reason="async funding")
            entry = await client.charges.create(account.id, amount=Decimal("1.25"), route="/api/async")
            balance = await client.accounts.balance(account.id, refresh=True)
            entries = [e async for e in client.accounts.transactions(account.id, limit=1)]
            with pytest.raises(creditledger.InsufficientCredits) as raised:
                await client.charges.create(account.id, amount="50.00")
            return account, entry, balance, entries, raised.value

    _account, entry, balance, entries, error = asyncio.run(scenario())
    assert entry.amount == Decimal("-1.25") and entry.balance_after == Decimal("18.75")
    assert balance.for_credit_type().available == Decimal("18.75")
    assert [e.kind for e in entries] == ["charge", "grant"]
    assert error.available == Decimal("18.75")


def test_async_helpers_refund_and_release_on_failure(ledger):
    async def scenario():
        async with ledger.async_client() as client:
            account = await client.accounts.create(f"sdk-async-{uuid.uuid4()}")
            await client.grants.create(account.id, "20.00", reason="async funding")
            with pytest.raises(asyncio.TimeoutError):
                async with client.charge(account.id, amount="2.00", route="/api/slow"):
                    raise TimeoutError()
            with pytest.raises(httpx.ConnectError):
                async with client.hold(account.id, amount="5.00") as h:
                    raise httpx.ConnectError("backend down")
            async with client.hold(account.id, amount="5.00") as captured:
                await captured.capture(amount="3.00")
            balance = await client.accounts.balance(account.id, refresh=True)
            return account, h.id, balance

    account, hold_id, balance = asyncio.run(scenario())
    [refund] = RefundLog.objects.filter(account__public_id=account.id)
    assert (refund.reason, refund.api_route, refund.amount) == ("timeout", "/api/slow", Decimal("2.00"))
    assert Hold.objects.get(public_id=hold_id).status == "released"
    assert balance.for_credit_type().available == Decimal("17.00")
