"""Retries: one Idempotency-Key per logical call, kept across attempts; what is retried and what is not."""

from __future__ import annotations

import uuid
from decimal import Decimal

import creditledger
import httpx
import pytest

from billing.models import LedgerEntry
from tests.sdk.conftest import available, fast_retry

pytestmark = pytest.mark.django_db


def _charges(account_id: str) -> int:
    return LedgerEntry.objects.filter(account__public_id=account_id, kind="charge").count()


def test_a_call_retried_after_a_dropped_connection_charges_once(ledger, client, account, proxy):
    """The proxy forwards the charge, lets the server commit it, then resets the client's connection."""
    with ledger.client(base_url=proxy.url) as through_proxy:
        entry = through_proxy.charges.create(account.id, amount=Decimal("2.50"), route="/api/generate")
    assert proxy.dropped == 1 and proxy.connections == 2
    assert entry.replayed  # the retry got the stored answer of the first attempt
    assert _charges(account.id) == 1
    assert LedgerEntry.objects.get(account__public_id=account.id, kind="charge").public_id == entry.id
    assert available(client, account.id) == Decimal("97.50")


class LoseFirstAnswer(httpx.BaseTransport):
    """Sends every request to the server; throws the first answer away (as a reset connection would)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key"))
        response = self.inner.handle_request(request)
        if len(self.keys) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_the_retry_reuses_the_idempotency_key_and_replays(ledger, client, account):
    transport = LoseFirstAnswer()
    with ledger.client(http_client=httpx.Client(transport=transport)) as lossy:
        hold = lossy.holds.create(account.id, amount="6.00")
    first, second = transport.keys
    assert first == second and uuid.UUID(first)
    assert hold.replayed
    assert available(client, account.id) == Decimal("94.00")
    assert len(list(client.accounts.holds(account.id))) == 1


def test_each_logical_call_has_its_own_key(ledger, account):
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        return httpx.Response(201, json={"object": "ledger_entry", "id": "txn_x", "amount": "-1.00"})

    with ledger.client(http_client=httpx.Client(transport=httpx.MockTransport(record))) as mocked:
        mocked.charges.create(account.id, amount="1.00")
        mocked.charges.create(account.id, amount="1.00")
        mocked.charges.create(account.id, amount="1.00", idempotency_key="mine")
    assert len(set(seen)) == 3 and seen[2] == "mine"


def _scripted(*answers: httpx.Response | Exception):
    """A mock server that plays `answers` in order, recording requests and the client's sleeps."""
    requests: list[httpx.Request] = []
    sleeps: list[float] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = creditledger.Client(
        "clk_test",
        base_url="http://ledger.test",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        retry=fast_retry(max_retries=3),
        sleep=sleeps.append,
    )
    return client, requests, sleeps


def _error(status: int, code: str, **extra) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code, **extra}})


OK = httpx.Response(201, json={"object": "ledger_entry", "id": "txn_1", "amount": "-1.00", "balance_after": "9.00"})


def test_503_is_retried_after_retry_after_with_the_same_key():
    busy = httpx.Response(
        503, json={"error": {"code": "lock_timeout", "message": "busy"}}, headers={"Retry-After": "2"}
    )
    client, requests, sleeps = _scripted(busy, OK)
    entry = client.charges.create("acc_1", amount="1.00")
    assert entry.balance_after == Decimal("9.00")
    assert sleeps == [2.0]
    assert len({r.headers["Idempotency-Key"] for r in requests}) == 1 and len(requests) == 2


def test_409_idempotency_key_in_use_is_retried_with_backoff():
    in_use = _error(409, "idempotency_key_in_use")
    client, requests, sleeps = _scripted(in_use, in_use, OK)
    client.charges.create("acc_1", amount="1.00")
    assert len(requests) == 3 and len(sleeps) == 2
    assert all(0 < s <= 0.05 for s in sleeps)
    assert len({r.headers["Idempotency-Key"] for r in requests}) == 1


def test_connection_errors_and_timeouts_are_retried_then_raised():
    client, requests, _sleeps = _scripted(
        httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), OK
    )
    client.charges.create("acc_1", amount="1.00")
    assert len(requests) == 4

    client, requests, _ = _scripted(*[httpx.ReadTimeout("slow")] * 4)
    with pytest.raises(creditledger.APITimeoutError) as raised:
        client.charges.create("acc_1", amount="1.00")
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout) and len(requests) == 4

    client, requests, _ = _scripted(*[_error(503, "service_unavailable")] * 4)
    with pytest.raises(creditledger.ServiceUnavailable):
        client.charges.create("acc_1", amount="1.00")
    assert len(requests) == 4


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (_error(400, "validation_error", param="amount"), creditledger.ValidationError),
        (_error(402, "insufficient_credits", available="0.50", required="1.00"), creditledger.InsufficientCredits),
        (_error(409, "idempotency_key_reused"), creditledger.IdempotencyKeyReused),
        (_error(409, "hold_not_pending", hold_status="released"), creditledger.HoldNotPending),
        (_error(429, "daily_limit_exceeded", remaining="0.00", required="1.00"), creditledger.DailyLimitExceeded),
        (_error(400, "idempotency_key_required"), creditledger.IdempotencyKeyRequired),
        (_error(403, "hold_owned_by_service"), creditledger.HoldOwnedByService),
        (_error(400, "invalid_cursor"), creditledger.InvalidCursor),
        (_error(400, "unknown_field", param="amout"), creditledger.UnknownField),
        (_error(500, "internal_error"), creditledger.InternalServerError),
    ],
)
def test_other_errors_are_never_retried(answer, error):
    client, requests, sleeps = _scripted(answer)
    with pytest.raises(error):
        client.charges.create("acc_1", amount="1.00")
    assert len(requests) == 1 and sleeps == []


def test_an_unknown_code_maps_to_its_status_class():
    client, _, _ = _scripted(_error(409, "something_new", detail="x"))
    with pytest.raises(creditledger.Conflict) as raised:
        client.holds.release("hold_1")
    assert raised.value.code == "something_new" and raised.value.body["detail"] == "x"
    client, _, _ = _scripted(httpx.Response(418, text="<html>teapot</html>"))
    with pytest.raises(creditledger.InvalidRequest) as raised:
        client.holds.retrieve("hold_1")
    assert raised.value.status == 418


def test_retry_after_as_an_http_date_is_honoured():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    busy = httpx.Response(
        503, json={"error": {"code": "service_unavailable", "message": "x"}}, headers={"Retry-After": when}
    )
    client, _, sleeps = _scripted(busy, OK)
    client.charges.create("acc_1", amount="1.00")
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 3.0
