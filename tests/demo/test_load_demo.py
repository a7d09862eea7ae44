"""`load_demo`: every admin page has rows after `make run`, and running it again changes nothing."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Account, ApiKey
from approvals.models import ApprovalRequest
from billing.models import CreditLot, Hold, LedgerEntry, ReconciliationRun, Wallet
from pricing.models import CreditType, Price, PricingAnomaly
from refunds.models import RefundLog
from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


def load() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def test_load_demo_is_idempotent():
    load()
    counts = (
        Account.objects.count(),
        LedgerEntry.objects.count(),
        ApiKey.objects.count(),
        CreditType.objects.count(),
        Price.objects.count(),
        RefundLog.objects.count(),
        Hold.objects.count(),
        ReconciliationRun.objects.count(),
        ApprovalRequest.objects.count(),
    )
    load()
    assert (
        Account.objects.count(),
        LedgerEntry.objects.count(),
        ApiKey.objects.count(),
        CreditType.objects.count(),
        Price.objects.count(),
        RefundLog.objects.count(),
        Hold.objects.count(),
        ReconciliationRun.objects.count(),
        ApprovalRequest.objects.count(),
    ) == counts
    assert counts[0] >= 3


def test_the_demo_fills_every_page():
    load()
    assert set(Hold.objects.values_list("status", flat=True)) == set(Hold.Status.values)
    assert RefundLog.objects.values("reason").distinct().count() >= 4
    assert RefundLog.objects.exclude(api_route="").values("api_route").distinct().count() >= 3
    assert Subscription.objects.filter(status=Subscription.Status.ACTIVE).exists()
    assert Price.objects.filter(version__gte=2).exists()
    assert PricingAnomaly.objects.exists()
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, price_key="gpt-4o").exists()
    assert Wallet.objects.filter(credit_type__code="usd").exists()
    assert CreditLot.objects.exists() or LedgerEntry.objects.filter(kind=LedgerEntry.Kind.GRANT).exists()
    assert ReconciliationRun.objects.get().status == ReconciliationRun.Status.CLEAN
    assert {"pending", "approved", "rejected"} <= set(ApprovalRequest.objects.values_list("status", flat=True))
    assert set(ApprovalRequest.objects.filter(status="pending").values_list("kind", flat=True)) == {
        "grant",
        "adjustment",
        "refund",
    }
    approved = ApprovalRequest.objects.get(status="approved")
    assert approved.ledger_entry.approver_user == approved.decided_by != approved.requested_by


def test_the_tour_account_is_left_as_the_readme_expects():
    load()
    alice = Account.objects.get(external_id="demo-alice")
    assert Wallet.objects.get(account=alice).balance == Decimal("500.00")


def test_it_says_how_to_reset_the_admin_password_every_time():
    assert "manage.py changepassword admin" in load()
    assert "manage.py changepassword admin" in load()


def test_the_demo_fills_the_dashboard():
    from console.selectors import dashboard

    load()
    board = dashboard()
    credits = next(b for b in board.credit_types if b.credit_type.code == "credits")
    assert sum(1 for day in credits.days if day.charged) == 30  # a trend over the whole window
    assert sum(1 for day in credits.days if day.refunded) >= 10
    assert len(credits.top_accounts) >= 5 and credits.active_accounts.window >= 7
    assert "demo-judy" in [line.account.external_id for line in credits.low_balances]
    assert len([r for r in credits.routes if r.refunded]) >= 4
    assert credits.held > 0 and credits.charged.today > 0
    assert board.reconciliation.status == "clean" and board.anomalies >= 1
