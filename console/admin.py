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

from console.charts import daily_chart
from console.selectors import dashboard, day_start

# Staff who may see the ledger see the dashboard (its figures are the ledger's).
DASHBOARD_PERMISSION = "billing.view_ledgerentry"


def _changelist(model: str, **params) -> str:
    return reverse(f"admin:{model}_changelist") + ("?" + urlencode(params) if params else "")


def _period(first: date, last: date, field: str = "created_at") -> dict:
    """The admin date filter's parameters for [first, last] (whole days, in the site's time zone)."""
    return {f"{field}__gte": str(day_start(first)), f"{field}__lt": str(day_start(last + timedelta(days=1)))}


def _ledger(credit_type, kind: str | None, first: date, last: date) -> str:
    params = {"credit_type__id__exact": credit_type.pk, **_period(first, last)}
    if kind:
        params["kind__exact"] = kind
    return _changelist("billing_ledgerentry", **params)


def approvals_link() -> str:
    """The pending approval requests' list."""
    return _changelist("approvals_approvalrequest", status__exact="pending")


def dashboard_context(now=None) -> dict:
    board = dashboard(now=now)
    first, today = board.first_day, board.today
    sections = []
    for b in board.credit_types:
        ct = b.credit_type
        figures = [
            (label, figure, money, _ledger(ct, kind, today, today), _ledger(ct, kind, first, today))
            for label, figure, money, kind in [
                ("Charged", b.charged, True, "charge"),
                ("Granted", b.granted, True, "grant"),
                ("Refunded", b.refunded, True, "refund"),
                ("Expired", b.expired, True, "expiry"),
                ("Active accounts", b.active_accounts, False, None),
            ]
        ]
        sections.append(
            {
                "board": b,
                "figures": [
                    {
                        "label": label,
                        "today": f.today,
                        "window": f.window,
                        "money": money,
                        "today_url": t,
                        "window_url": w,
                    }
                    for label, f, money, t, w in figures
                ],
                "held_url": _changelist("billing_hold", status__exact="pending", credit_type__id__exact=ct.pk),
                "routes": [
                    {
                        "rate": r,
                        "charged_url": _changelist(
                            "billing_ledgerentry",
                            kind__exact="charge",
                            credit_type__id__exact=ct.pk,
                            q=r.route,
                            **_period(first, today),
                        )
                        if r.route
                        else None,
                        "refunds_url": _changelist(
                            "refunds_refundlog",
                            api_route=r.route,
                            credit_type__id__exact=ct.pk,
                            **_period(first, today),
                        )
                        if r.route
                        else None,
                    }
                    for r in b.routes
                ],
                "top_accounts": [(line, _account_url(line.account)) for line in b.top_accounts],
                "low_balances": [(line, _account_url(line.account)) for line in b.low_balances],
                "chart": daily_chart(b.days, ct),
            }
        )
    run = board.reconciliation
    return {
        "board": board,
        "sections": sections,
        "reconciliation_url": reverse("admin:billing_reconciliationrun_change", args=[run.pk]) if run else None,
        "reconciliation_list_url": _changelist("billing_reconciliationrun"),
        "anomalies_url": _changelist("pricing_pricinganomaly"),
        "anomaly_urls": [
            (a, reverse("admin:pricing_pricinganomaly_change", args=[quote(a.pk)])) for a in board.latest_anomalies
        ],
        "approvals_url": approvals_link(),
    }


def _account_url(account) -> str:
    return reverse("admin:accounts_account_change", args=[quote(account.pk)])


def dashboard_panel(request) -> str:
    """The dashboard's HTML for the admin index; nothing for staff who may not view the ledger."""
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        return ""
    return render_to_string("console/dashboard.html", dashboard_context(), request=request)
