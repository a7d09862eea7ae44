"""The pagers read both list shapes: today's `{next, previous, results}` and `{object, data, has_more, next_cursor}`."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import creditledger
import httpx


def _entry(n: int) -> dict:
    return {"object": "ledger_entry", "id": f"txn_{n}", "amount": f"-{n}.00"}


def _new_shape(request: httpx.Request) -> httpx.Response:
    cursor = request.url.params.get("cursor")
    assert request.url.params.get("limit") == "2" and request.url.params.get("kind") == "charge"
    pages = {
        None: ([1, 2], "c2"),
        "c2": ([3, 4], "c3"),
        "c3": ([5], None),
    }
    ids, next_cursor = pages[cursor]
    return httpx.Response(
        200,
        json={
            "object": "list",
            "data": [_entry(n) for n in ids],
            "has_more": next_cursor is not None,
            "next_cursor": next_cursor,
        },
    )


def _old_shape(request: httpx.Request) -> httpx.Response:
    cursor = request.url.params.get("cursor")
    base = "http://ledger.test/api/v1/accounts/acc_1/transactions?kind=charge&limit=2"
    pages = {None: ([1, 2], "cD0y"), "cD0y": ([3, 4], "cD00"), "cD00": ([5], None)}
    ids, next_cursor = pages[cursor]
    return httpx.Response(
        200,
        json={
            "next": f"{base}&cursor={next_cursor}" if next_cursor else None,
            "previous": None,
            "results": [_entry(n) for n in ids],
        },
    )


def _client(handler) -> creditledger.Client:
    return creditledger.Client(
        "clk_test", base_url="http://ledger.test", http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )


def test_both_shapes_iterate_every_page_lazily():
    for handler in (_new_shape, _old_shape):
        calls: list[str | None] = []

        def recording(request, handler=handler, calls=calls):
            calls.append(request.url.params.get("cursor"))
            return handler(request)

        pager = _client(recording).accounts.transactions("acc_1", kind="charge", limit=2)
        assert calls == []  # nothing fetched before iteration
        iterator = iter(pager)
        first = next(iterator)
        assert first.id == "txn_1" and first.amount == Decimal("-1.00")
        assert len(calls) == 1
        assert [e.id for e in iterator] == ["txn_2", "txn_3", "txn_4", "txn_5"]
        assert len(calls) == 3


def test_the_new_shape_with_has_more_false_stops():
    def handler(request):
        return httpx.Response(200, json={"object": "list", "data": [_entry(1)], "has_more": False, "next_cursor": "x"})

    assert [e.id for e in _client(handler).accounts.holds("acc_1")] == ["txn_1"]


def test_the_async_pager_reads_both_shapes():
    async def run(handler):
        async with creditledger.AsyncClient(
            "clk_test",
            base_url="http://ledger.test",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        ) as client:
            return [e.id async for e in client.accounts.transactions("acc_1", kind="charge", limit=2)]

    for handler in (_new_shape, _old_shape):
        assert asyncio.run(run(handler)) == ["txn_1", "txn_2", "txn_3", "txn_4", "txn_5"]
