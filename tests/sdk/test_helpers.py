"""The seed-003 helpers against the live server: refund on failure, release on failure."""

from __future__ import annotations

import json
from decimal import Decimal

import creditledger
import httpx
import pytest

from billing.models import Hold, LedgerEntry
from refunds.models import RefundLog
from tests.sdk.conftest import PRICE_KEY, available

pytestmark = pytest.mark.django_db


def _refunds(account_id: str):
    return list(RefundLog.objects.filter(account__public_id=account_id).order_by("id"))


def test_a_backend_timeout_inside_charge_refunds_it_with_reason_timeout(client, account):
    with pytest.raises(httpx.ReadTimeout), client.charge(account.id, amount=Decimal("2.50"), route="/api/chat") as c:
        assert c.amount == Decimal("2.50")
        assert available(client, account.id) == Decimal("97.50")  # charged on entry
        raise httpx.ReadTimeout("backend did not answer in 60 s")

    assert available(client, account.id) == Decimal("100.00")
    [refund] = _refunds(account.id)
    assert refund.reason == "timeout"
    assert refund.api_route == "/api/chat"
    assert refund.amount == Decimal("2.50")
    assert refund.charge.public_id == c.id
    assert "ReadTimeout: backend did not answer in 60 s" in refund.error_message
    assert c.refunded and c.refund_result.reason == "timeout"
    # The API tells the same story.
    [listed] = list(client.accounts.refunds(account.id))
    assert (listed.id, listed.reason, listed.amount) == (refund.public_id, "timeout", Decimal("2.50"))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TimeoutError("timed out"), "timeout"),
        (ConnectionRefusedError("backend down"), "backend_failure"),
        (httpx.ConnectError("no route"), "backend_failure"),
        (
            httpx.HTTPStatusError(
                "502 from backend",
                request=httpx.Request("POST", "http://backend/"),
                response=httpx.Response(502),
            ),
            "backend_failure",
        ),
        (json.JSONDecodeError("Expecting value", "<html>", 0), "parsing_error"),
        (KeyError("choices"), "other"),
    ],
)
def test_the_refund_reason_follows_the_exception(client, account, error, reason):
    with pytest.raises(type(error)), client.charge(account.id, amount="1.00", route="/api/generate"):
        raise error
    [refund] = _refunds(account.id)
    assert refund.reason == reason
    assert available(client, account.id) == Decimal("100.00")


def test_a_block_that_succeeds_keeps_the_charge(client, account):
    with client.charge(account.id, amount="3.00", route="/api/generate", task_id="img-1") as c:
        pass
    assert not c.refunded
    assert _refunds(account.id) == []
    assert available(client, account.id) == Decimal("97.00")
    entry = LedgerEntry.objects.get(public_id=c.id)
    assert (entry.kind, entry.route, entry.task_id) == ("charge", "/api/generate", "img-1")


def test_a_refused_charge_never_enters_the_block(client, account):
    entered = False
    with pytest.raises(creditledger.InsufficientCredits), client.charge(account.id, amount="500.00"):
        entered = True
    assert not entered
    assert _refunds(account.id) == []


def test_an_account_key_cannot_refund_the_original_error_still_propagates(ledger, client, account):
    issued = client_account_key(account.id)
    with ledger.client(issued) as own, pytest.raises(RuntimeError) as raised, own.charge(amount="1.00") as c:
        raise RuntimeError("backend exploded")
    assert isinstance(c.refund_error, creditledger.PermissionDenied)
    assert any("refunding charge" in note for note in raised.value.__notes__)
    assert _refunds(account.id) == []


def client_account_key(account_id: str) -> str:
    """An account-bound key, committed so the server sees it (the test's own transaction would hide it)."""
    import threading

    from django.db import connection

    from accounts.models import Account
    from tests.factories import account_key

    out: list[str] = []

    def make() -> None:  # another thread: another connection, autocommit
        try:
            out.append(account_key(Account.objects.get(public_id=account_id))[1])
        finally:
            connection.close()

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    return out[0]


def test_an_exception_inside_hold_releases_it(client, account):
    with pytest.raises(RuntimeError), client.hold(account.id, amount=Decimal("10.00"), task_id="job-1") as h:
        assert available(client, account.id) == Decimal("90.00")
        raise RuntimeError("worker crashed")
    hold = Hold.objects.get(public_id=h.id)
    assert hold.status == "released"
    assert "RuntimeError: worker crashed" in hold.release_reason
    assert available(client, account.id) == Decimal("100.00")
    assert not LedgerEntry.objects.filter(account__public_id=account.id, kind="charge").exists()


def test_a_priced_hold_captures_the_real_usage(client, account):
    with client.hold(account.id, price_key=PRICE_KEY, estimated_usage={"input_tokens": 4000}) as h:
        assert h.hold.amount == Decimal("10.00")  # 4K input tokens at 2.5 per 1K
        captured = h.capture(usage={"input_tokens": 1000, "output_tokens": 100})
    assert captured.status == "captured"
    assert captured.captured_amount == Decimal("3.50")  # 2.50 + 1.00
    assert Hold.objects.get(public_id=h.id).status == "captured"
    assert available(client, account.id) == Decimal("96.50")


def test_a_capture_by_amount_then_an_exception_keeps_the_capture(client, account):
    with pytest.raises(ValueError), client.hold(account.id, amount="5.00") as h:
        h.capture(amount=Decimal("4.25"))
        raise ValueError("after the capture")
    assert Hold.objects.get(public_id=h.id).status == "captured"
    assert available(client, account.id) == Decimal("95.75")


def test_leaving_the_block_without_capturing_releases_the_hold(client, account):
    with client.hold(account.id, amount="7.00") as h:
        pass
    hold = Hold.objects.get(public_id=h.id)
    assert hold.status == "released"
    assert hold.release_reason.startswith("not captured")
    assert available(client, account.id) == Decimal("100.00")
