"""The dashboard at the admin index, registered into config's admin site (`admin_index_register`).

Reads come from `console.selectors.dashboard`; this module only adds the
links (each figure opens the filtered admin list it summarises) and renders.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.admin.utils import quote
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode

from console.charts import chart_svg, daily_chart
from console.selectors import dashboard, day_start

# Staff who may see the ledger see the dashboard (its figures are the ledger's).
DASHBOARD_PERMISSION = "billing.view_ledgerentry"


class _Links:
    """Admin URLs for one page: each list's and each change page's path reversed once, not once per link.

    The dashboard has a hundred or more links over a few admin pages; each
    `reverse()` walks the URLconf.
    """

    PK = "__pk__"

    def __init__(self) -> None:
        self._paths: dict[str, str] = {}

    def changelist(self, model: str, **params) -> str:
        name = f"admin:{model}_changelist"
        if name not in self._paths:
            self._paths[name] = reverse(name)
        return self._paths[name] + ("?" + urlencode(params) if params else "")

    def change(self, model: str, pk) -> str:
        name = f"admin:{model}_change"
        if name not in self._paths:
            self._paths[name] = reverse(name, args=[self.PK])
        return self._paths[name].replace(self.PK, str(quote(pk)), 1)


def _period(first: date, last: date, field: str = "created_at") -> dict:
    """The admin date filter's parameters for [first, last] (whole days, in the site's time zone)."""
    return {f"{field}__gte": str(day_start(first)), f"{field}__lt": str(day_start(last + timedelta(days=1)))}


def dashboard_context(now=None) -> dict:
    board = dashboard(now=now)
    first, today = board.first_day, board.today
    links = _Links()
    window, today_only = _period(first, today), _period(today, today)
    sections = []
    for b in board.credit_types:
        ct = b.credit_type

        def ledger(kind: str | None, period: dict, ct=ct) -> str:
            params = {"credit_type__id__exact": ct.pk, **period}
            if kind:
                params["kind__exact"] = kind
            return links.changelist("billing_ledgerentry", **params)

        sections.append(
            {
                "board": b,
                "figures": [
                    {
                        "label": label,
                        "today": figure.today,
                        "window": figure.window,
                        "money": money,
                        "today_url": ledger(kind, today_only),
                        "window_url": ledger(kind, window),
                    }
                    for label, figure, money, kind in [
                        ("Charged", b.charged, True, "charge"),
                        ("Granted", b.granted, True, "grant"),
                        ("Refunded", b.refunded, True, "refund"),
                        ("Expired", b.expired, True, "expiry"),
                        ("Active accounts", b.active_accounts, False, None),
                    ]
                ],
                "held_url": links.changelist("billing_hold", status__exact="pending", credit_type__id__exact=ct.pk),
                "routes": [
                    {
                        "rate": r,
                        "charged_url": links.changelist(
                            "billing_ledgerentry",
                            kind__exact="charge",
                            credit_type__id__exact=ct.pk,
                            q=r.route,
                            **window,
                        )
                        if r.route
                        else None,
                        "refunds_url": links.changelist(
                            "refunds_refundlog", api_route=r.route, credit_type__id__exact=ct.pk, **window
                        )
                        if r.route
                        else None,
                    }
                    for r in b.routes
                ],
                "top_accounts": [(line, links.change("accounts_account", line.account.pk)) for line in b.top_accounts],
                "low_balances": [(line, links.change("accounts_account", line.account.pk)) for line in b.low_balances],
                "chart": (chart := daily_chart(b.days, ct)),
                "chart_svg": chart_svg(chart),
            }
        )
    run = board.reconciliation
    return {
        "board": board,
        "sections": sections,
        "reconciliation_url": links.change("billing_reconciliationrun", run.pk) if run else None,
        "reconciliation_list_url": links.changelist("billing_reconciliationrun"),
        "anomalies_url": links.changelist("pricing_pricinganomaly", resolved_at__isempty="1"),
        "anomaly_urls": [(a, links.change("pricing_pricinganomaly", a.pk)) for a in board.latest_anomalies],
        "approvals_url": links.changelist("approvals_approvalrequest", waiting="yes"),
    }


def dashboard_panel(request) -> str:
    """The dashboard's HTML for the admin index; nothing for staff who may not view the ledger."""
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        return ""
    return render_to_string("console/dashboard.html", dashboard_context(), request=request)
