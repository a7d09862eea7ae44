"""Admin for the refund log: read-only, filterable, with a stats page and chart.

The staff refund itself lives on the ledger: refunds are made from the
charge. Billing's `LedgerEntry` admin is replaced here with a subclass that
adds the refund button, view and action (refunds.admin_refund); billing sits
below refunds and imports nothing from it.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from billing.admin import (
    CompactColumnsMixin,
    EstimatedCountPaginator,
    LedgerEntryAdmin,
    ReadOnlyAdminMixin,
    account_panel_register,
    entry_panel_register,
    ledger_row_action_register,
)
from billing.models import LedgerEntry
from config.admin_export import CsvExportMixin, money_cell, time_cell
from config.admin_money import money_column
from config.admin_search import admin_search_register
from config.money import money_display
from refunds.admin_refund import REFUND_PERMISSION, ChargeRefundAdminMixin
from refunds.forms import RefundStatsForm
from refunds.models import RefundLog
from refunds.selectors import charges_refundable, refund_stats, refunds_filtered
from refunds.services import charge_refundable

ROUTE_FILTER_CHOICES = 50
ACCOUNT_REFUNDS = 10
CHART_TOP = 15


class LedgerEntryRefundAdmin(ChargeRefundAdminMixin, LedgerEntryAdmin):
    """The ledger admin with the staff refund."""


admin.site.unregister(LedgerEntry)
admin.site.register(LedgerEntry, LedgerEntryRefundAdmin)


class ApiRouteFilter(admin.SimpleListFilter):
    """The routes that refunds name, most frequent first (bounded: the log can be large)."""

    title = "API route"
    parameter_name = "api_route"

    def lookups(self, request, model_admin):
        routes = (
            RefundLog.objects.exclude(api_route="")
            .values("api_route")
            .annotate(n=Count("id"))
            .order_by("-n", "api_route")[:ROUTE_FILTER_CHOICES]
        )
        return [(row["api_route"], row["api_route"]) for row in routes]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(api_route=self.value())
        return queryset


@admin.register(RefundLog)
class RefundLogAdmin(CsvExportMixin, CompactColumnsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "public_id",
        "amount_money",
        "credit_type_code",
        "reason",
        "api_route",
        "charge_link",
        "account_short",
        "created_short",
    ]
    list_select_related = ["account", "credit_type", "charge", "actor_api_key", "actor_user", "approver_user"]
    list_filter = ["reason", ApiRouteFilter, "credit_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=public_id", "=account__public_id", "=account__external_id", "=charge__public_id", "api_route"]
    date_hierarchy = "created_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    fields = [
        "public_id",
        "created_at",
        "account",
        "credit_type",
        "amount_money",
        "reason",
        "api_route",
        "error_message",
        "charge",
        "refund_entry",
        "metadata",
        "note",
        "idempotency_key",
        "actor_api_key",
        "actor_user",
        "approver_user",
    ]
    readonly_fields = fields
    amount_money = money_column("amount")

    export_select_related = ["refund_entry"]
    export_columns = [
        ("id", "public_id"),
        ("created_at", time_cell("created_at")),
        ("account", "account__public_id"),
        ("external_id", "account__external_id"),
        ("credit_type", "credit_type__code"),
        ("amount", money_cell("amount")),
        ("reason", "reason"),
        ("api_route", "api_route"),
        ("charge", "charge__public_id"),
        ("refund_entry", "refund_entry__public_id"),
        ("note", "note"),
        ("actor", lambda log: log.actor_display),
    ]

    @admin.display(description="charge")
    def charge_link(self, log: RefundLog):
        url = reverse("admin:billing_ledgerentry_change", args=[quote(log.charge_id)], current_app=self.admin_site.name)
        return format_html('<a href="{}">{}</a>', url, log.charge.public_id)

    @admin.display(description="actor")
    def actor_display(self, log: RefundLog) -> str:
        return log.actor_display

    def get_urls(self):
        return [
            path("stats/", self.admin_site.admin_view(self.stats_view), name="refunds_refundlog_stats"),
            *super().get_urls(),
        ]

    def stats_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = RefundStatsForm(request.GET or None)
        since, until, start, end = form.period()
        credit_type = form.cleaned_data.get("credit_type") if form.is_bound and form.is_valid() else None
        queryset = refunds_filtered(since=start, until=end, credit_type=credit_type.code if credit_type else None)
        stats = _with_display_totals(refund_stats(queryset))
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund stats",
            "opts": self.opts,
            "form": form,
            "since": since,
            "until": until,
            "stats": stats,
            "reason_chart": bar_chart(stats["by_reason"], "reason", labels=dict(RefundLog.Reason.choices)),
            "route_chart": bar_chart(stats["by_route"], "api_route", labels={"": "(no route)"}),
        }
        return TemplateResponse(request, "admin/refunds/refundlog/stats.html", context)


def _with_display_totals(stats: dict) -> dict:
    """Each row's `total_display`: its total (already at its credit type's scale) with thousands separators."""
    for key in ("by_credit_type", "by_reason", "by_route"):
        for row in stats[key]:
            places = len(row["total_amount"].partition(".")[2])
            row["total_display"] = money_display(row["total_amount"], places)
    return stats


def bar_chart(rows: list[dict], key: str, *, labels: dict | None = None, width: int = 360) -> dict:
    """Bars for an inline SVG chart: refund counts per `key`, largest first (top CHART_TOP).

    Rendered server-side so the admin needs no JavaScript or CDN.
    """
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + row["count"]
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:CHART_TOP]
    peak = max((n for _, n in top), default=0) or 1
    bar_height, gap = 18, 6
    bars = [
        {
            "label": (labels or {}).get(name, name),
            "count": n,
            "y": i * (bar_height + gap),
            "text_y": i * (bar_height + gap) + 13,
            "width": max(1, round(width * n / peak)),
            "value_x": 200 + max(1, round(width * n / peak)) + 6,
        }
        for i, (name, n) in enumerate(top)
    ]
    return {"bars": bars, "height": max(1, len(bars) * (bar_height + gap)), "bar_height": bar_height}


def _refunds_panel(request, account) -> str:
    """The account page's latest refunds (registered with billing's account admin)."""
    logs = list(
        RefundLog.objects.filter(account=account)
        .select_related("credit_type", "charge")
        .order_by("-id")[:ACCOUNT_REFUNDS]
    )
    full = reverse("admin:refunds_refundlog_changelist") + f"?q={account.public_id}"
    return render_to_string("admin/accounts/account/panels/refunds.html", {"logs": logs, "full_url": full})


account_panel_register(_refunds_panel, order=40)
admin_search_register(RefundLog, ["public_id"], prefix="rfd_")


def charge_refunds_url(charge: LedgerEntry) -> str:
    """The refund log filtered to this charge's refunds."""
    return reverse("admin:refunds_refundlog_changelist") + f"?q={charge.public_id}"


def _charge_refunds_panel(request, entry: LedgerEntry) -> str | None:
    """A charge's refunds, each linked, and what remains refundable (registered with billing's entry admin)."""
    if entry.kind != LedgerEntry.Kind.CHARGE:
        return None
    logs = list(entry.refund_logs.select_related("refund_entry", "actor_user", "actor_api_key").order_by("id"))
    refundable = charge_refundable(entry)
    return render_to_string(
        "admin/billing/ledgerentry/panels/refunds.html",
        {
            "entry": entry,
            "logs": logs,
            "refundable": refundable,
            "charged": -entry.amount,
            "refunded": -entry.amount - refundable,
            "refunds_url": charge_refunds_url(entry),
        },
    )


entry_panel_register(_charge_refunds_panel, order=20)


def _refund_row_buttons(request, entries: list[LedgerEntry]) -> dict[int, str]:
    """The account page's Refund button on each charge with something left to refund (needs the refund permission)."""
    if not request.user.has_perm(REFUND_PERMISSION):
        return {}
    by_pk = {entry.pk: entry for entry in entries}
    back = urlencode({"next": request.get_full_path()})
    return {
        pk: format_html(
            '<a href="{}?{}" class="button refund-row-button" title="{} {} refundable">Refund</a>',
            reverse("admin:billing_ledgerentry_refund", args=[quote(pk)]),
            back,
            money_display(refundable, by_pk[pk].credit_type),
            by_pk[pk].credit_type.code,
        )
        for pk, refundable in charges_refundable(entries).items()
        if refundable > 0
    }


ledger_row_action_register(_refund_row_buttons)
