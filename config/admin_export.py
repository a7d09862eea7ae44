"""CSV export of an admin list, as filtered on screen, streamed.

A ModelAdmin with `CsvExportMixin` and `export_columns` (header, value of a
row) gains `<list>/export.csv` and an "Export CSV" button on its list that
carries the list's query string (filters, search, date range, ordering).
The rows are read with `.iterator(chunk_size=...)` (a server-side cursor on
PostgreSQL) and written as they come through a `StreamingHttpResponse`, so
memory stays flat however many rows match. Amounts are written at their
credit type's scale with no separators (`config.money.money_plain`).
Exporting needs the list's view permission.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

from config.money import money_plain

EXPORT_CHUNK_SIZE = 2000


class _Echo:
    """A file-like object whose write() returns the line, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def money_cell(field: str, *, credit_type: str = "credit_type") -> Callable[[Any], str]:
    """A CSV cell: `row.<field>` at the scale of `row.<credit_type>`."""

    def cell(row: Any) -> str:
        kind = row
        for name in credit_type.split("__"):
            kind = getattr(kind, name)
        return money_plain(getattr(row, field), kind)

    return cell


def time_cell(field: str) -> Callable[[Any], str]:
    def cell(row: Any) -> str:
        value = getattr(row, field)
        return timezone.localtime(value).isoformat() if value is not None else ""

    return cell


def csv_rows(header: list[str], rows: Iterator[list[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


class CsvExportMixin:
    """`export_columns = [(header, attribute name or callable(row)), ...]`; `export_select_related` for the joins."""

    export_columns: list[tuple[str, str | Callable[[Any], Any]]] = []
    export_select_related: list[str] = []

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("export.csv", self.admin_site.admin_view(self.export_view), name="{}_{}_export".format(*info)),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        info = self.opts.app_label, self.opts.model_name
        query = request.GET.urlencode()
        url = reverse("admin:{}_{}_export".format(*info), current_app=self.admin_site.name)
        extra_context["export_url"] = f"{url}?{query}" if query else url
        return super().changelist_view(request, extra_context)

    def export_queryset(self, request):
        """The list's rows as filtered, searched and ordered on screen."""
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        if self.export_select_related:
            queryset = queryset.select_related(*self.export_select_related)
        return queryset

    def export_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.export_queryset(request)
        columns = self.export_columns
        getters = [value if callable(value) else _attribute(value) for _, value in columns]

        def rows() -> Iterator[list[Any]]:
            for obj in queryset.iterator(chunk_size=EXPORT_CHUNK_SIZE):
                yield [get(obj) for get in getters]

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(csv_rows([h for h, _ in columns], rows()), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{self.opts.model_name}-{stamp}.csv"'
        return response


# A text cell a spreadsheet would run as a formula ("=HYPERLINK(...)" in a
# description or note sent through the API) is written with a leading quote.
FORMULA_STARTS = ("=", "+", "@", "\t", "\r")


def _attribute(path_: str) -> Callable[[Any], Any]:
    def get(row: Any) -> Any:
        for name in path_.split("__"):
            row = getattr(row, name)
            if row is None:
                return ""
        if isinstance(row, str) and row.startswith(FORMULA_STARTS):
            return "'" + row
        return row

    return get
