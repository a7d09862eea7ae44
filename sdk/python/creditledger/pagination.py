"""Lazy iterators over the API's lists, following cursors page by page.

Two list shapes are understood, so the client works with servers before and
after the list contract was unified:

* ``{"object": "list", "data": [...], "has_more": bool, "next_cursor": str|null}``,
  the next page is ``?cursor=<next_cursor>``;
* ``{"next": url|null, "previous": url|null, "results": [...]}``, the cursor
  is read from the ``next`` URL.

A page is fetched only when iteration reaches it; each page is its own call
(with its own retries). The filters and ``limit`` apply to every page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from creditledger._core import Request, cursor_of


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def _page_request(request: Request, cursor: str | None) -> Request:
    params = dict(request.params or {})
    if cursor is not None:
        params["cursor"] = cursor
    return replace(request, params=params, cast=lambda body: body)


def _page(request: Request, body: Any) -> Page:
    items, cursor = cursor_of(body if isinstance(body, dict) else {})
    return Page([request.cast(item) for item in items], cursor)


class Pager:
    """``for item in pager`` walks every page; ``pager.pages()`` yields `Page`s; ``pager.first()`` one page."""

    def __init__(self, client: Any, request: Request) -> None:
        self._client = client
        self._request = request

    def first(self) -> Page:
        return _page(self._request, self._client._execute(_page_request(self._request, None)))

    def pages(self) -> Iterator[Page]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = _page(self._request, self._client._execute(_page_request(self._request, cursor)))
            yield page
            if page.next_cursor is None or page.next_cursor in seen:
                return
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[Any]:
        for page in self.pages():
            yield from page.items

    def to_list(self, limit: int | None = None) -> list[Any]:
        out: list[Any] = []
        for item in self:
            if limit is not None and len(out) >= limit:
                break
            out.append(item)
        return out


class AsyncPager:
    """``async for item in pager`` walks every page; ``pager.pages()`` is an async iterator of `Page`s."""

    def __init__(self, client: Any, request: Request) -> None:
        self._client = client
        self._request = request

    async def first(self) -> Page:
        return _page(self._request, await self._client._execute(_page_request(self._request, None)))

    async def pages(self) -> AsyncIterator[Page]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = _page(self._request, await self._client._execute(_page_request(self._request, cursor)))
            yield page
            if page.next_cursor is None or page.next_cursor in seen:
                return
            seen.add(page.next_cursor)
            cursor = page.next_cursor

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for page in self.pages():
            for item in page.items:
                yield item

    async def to_list(self, limit: int | None = None) -> list[Any]:
        out: list[Any] = []
        async for item in self:
            if limit is not None and len(out) >= limit:
                break
            out.append(item)
        return out
