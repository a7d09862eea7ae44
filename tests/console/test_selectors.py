"""The dashboard's figures (console.selectors.dashboard): each one, from the rollup and from the live tail.

Entries are made now, through the services; the dashboard is read as of a
later `now` to place them inside or outside its window. Each figure is
checked twice: read live from the ledger (no rollup yet) and read from the
rollup (`ledger_rollup_refresh` first), which must agree.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CreditLot, LedgerEntry
from billing.services import Actor, grant_create, hold_capture, lot_expire
from console.models import LedgerDay, WalletDay
from console.selectors import dashboard, pending_approvals_count
from console.services import ledger_rollup_refresh
from refunds.services import refund_issue
from tests.factories import (
    AccountFactory,
    CreditTypeFactory,
    PricingAnomalyFactory,
    ReconciliationRunFactory,
    charge_for,
    default_credit_type,
    funded_account,
    hold_for,
)

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture(params=["live", "rolled up"])
def read(request):
    """Read the dashboard as of `now`, live or after a rollup refresh made now (before `now`)."""

    def read_at(now=None):
        if request.param == "rolled up":
            ledger_rollup_refresh()
        return dashboard(now=now)

    return read_at


def board_of(board, credit_type=None):
    code = (credit_type or default_credit_type()).code
    return next(b for b in board.credit_types if b.credit_type.code == code)


def test_charged_granted_refunded_and_expired_today_and_over_30_days(read):
    account = funded_account("100.00")
    charge = charge_for(account, "40.00")
    charge_for(account, "2.50")
    refund_issue(charge=charge, amount="10.00", reason="timeout", actor=Actor.system())
    grant_create(
        account=account,
        credit_type=default_credit_type(),
        amount="5.00",
        actor=Actor.system(),
        expires_at=timezone.now() + timedelta(seconds=1),
    )
    lot_expire(lot=CreditLot.objects.get(), now=timezone.now() + timedelta(seconds=2))

    b = board_of(read())
    assert (b.charged.today, b.charged.window) == (Decimal("42.50"), Decimal("42.50"))
    assert (b.granted.today, b.granted.window) == (Decimal("105.00"), Decimal("105.00"))
    assert (b.refunded.today, b.refunded.window) == (Decimal("10.00"), Decimal("10.00"))
    assert (b.expired.today, b.expired.window) == (Decimal("5.00"), Decimal("5.00"))


def test_yesterdays_entries_count_in_the_window_but_not_today(read):
    charge_for(funded_account("100.00"), "7.00")
    b = board_of(read(timezone.now() + DAY))
    assert (b.charged.today, b.charged.window) == (0, Decimal("7.00"))
    assert (b.active_accounts.today, b.active_accounts.window) == (0, 1)


def test_the_window_starts_29_days_before_today(read):
    charge_for(funded_account("100.00"), "7.00")
    board = read(timezone.now() + 29 * DAY)
    assert board.first_day == timezone.localdate()
    assert board_of(board).charged.window == Decimal("7.00")
    assert board_of(board).days[0].charged == Decimal("7.00")


def test_entries_30_days_back_have_left_the_window(read):
    charge_for(funded_account("100.00"), "7.00")
    board = read(timezone.now() + 30 * DAY)
    assert board.first_day == timezone.localdate() + DAY
    assert board.credit_types == []  # nothing in the window, no pending holds


def test_refund_rate_by_route(read):
    account = funded_account("100.00")
    chat = charge_for(account, "10.00", route="/api/chat")
    charge_for(account, "30.00", route="/api/export")
    refund_issue(charge=chat, amount="2.50", reason="api_error", api_route="/api/chat", actor=Actor.system())

    routes = {r.route: r for r in board_of(read()).routes}
    assert routes["/api/chat"].charged == Decimal("10.00")
    assert routes["/api/chat"].refunded == Decimal("2.50")
    assert routes["/api/chat"].rate == Decimal("25.0")
    assert routes["/api/export"].rate == Decimal("0.0")
    assert [r.route for r in board_of(read()).routes][:2] == ["/api/chat", "/api/export"]  # highest rate first


def test_a_refund_from_a_route_that_charged_nothing_has_no_rate(read):
    charge = charge_for(funded_account("100.00"), "10.00", route="/api/chat")
    refund_issue(charge=charge, reason="other", api_route="/api/retry", actor=Actor.system())
    routes = {r.route: r for r in board_of(read()).routes}
    assert routes["/api/retry"].rate is None and routes["/api/retry"].refunded == Decimal("10.00")


def test_active_accounts_are_accounts_with_entries(read):
    funded_account("10.00")
    funded_account("10.00")
    other = CreditTypeFactory(code="usd", scale=6)
    funded_account("10", credit_type=other)
    board = read()
    assert (board_of(board).active_accounts.today, board_of(board).active_accounts.window) == (2, 2)
    assert board_of(board, other).active_accounts.window == 1


def test_rollup_and_live_tail_are_merged_without_counting_an_account_twice():
    alice, bob = funded_account("100.00"), funded_account("100.00")
    charge_for(alice, "10.00")
    ledger_rollup_refresh()
    charge_for(alice, "5.00")  # after the rollup's cut: read live
    carol = funded_account("100.00")
    charge_for(carol, "12.00")

    b = board_of(dashboard())
    assert b.active_accounts.window == 3 and b.active_accounts.today == 3
    assert b.charged.window == Decimal("27.00")
    assert [(line.account, line.spent) for line in b.top_accounts] == [
        (alice, Decimal("15.00")),
        (carol, Decimal("12.00")),
    ]
    assert bob not in [line.account for line in b.top_accounts]


def test_top_accounts_by_spend_over_the_window(read):
    big, small = funded_account("100.00"), funded_account("100.00")
    funded_account("100.00")  # spends nothing: not listed
    charge_for(big, "30.00")
    charge_for(small, "3.00")
    charge_for(small, "4.00")
    lines = board_of(read()).top_accounts
    assert [(line.account, line.spent, line.available) for line in lines] == [
        (big, Decimal("30.00"), Decimal("70.00")),
        (small, Decimal("7.00"), Decimal("93.00")),
    ]


def test_low_on_balance_is_under_7_days_at_the_30_day_pace(read):
    low = funded_account("35.00")
    charge_for(low, "30.00")  # 1.00 a day over 30 days, 5.00 left: 5 days
    comfortable = funded_account("130.00")
    charge_for(comfortable, "30.00")  # 100.00 left: 100 days
    lines = board_of(read()).low_balances
    assert [(line.account, line.available, line.days_left) for line in lines] == [
        (low, Decimal("5.00"), Decimal("5.0"))
    ]
    assert comfortable not in [line.account for line in lines]


def test_held_is_the_value_of_pending_holds_only(read):
    account = funded_account("100.00")
    hold_for(account, "10.00")
    hold_for(account, "2.25")
    hold_capture(hold=hold_for(account, "5.00"), amount="5.00", actor=Actor.system())
    b = board_of(read())
    assert (b.held, b.pending_holds) == (Decimal("12.25"), 2)


def test_daily_points_for_the_chart(read):
    account = funded_account("100.00")
    charge = charge_for(account, "8.00")
    refund_issue(charge=charge, amount="1.00", reason="other", actor=Actor.system())
    days = board_of(read(timezone.now() + 2 * DAY)).days
    assert len(days) == 30 and days[-1].day == timezone.localdate() + 2 * DAY
    point = days[-3]
    assert (point.day, point.charged, point.granted, point.refunded) == (
        timezone.localdate(),
        Decimal("8.00"),
        Decimal("100.00"),
        Decimal("1.00"),
    )
    assert all(not (p.charged or p.granted or p.refunded) for p in days[-2:])


def test_last_full_reconciliation_run_anomalies_and_pending_approvals(read):
    ReconciliationRunFactory(status="clean")
    latest = ReconciliationRunFactory(status="drift")
    ReconciliationRunFactory(status="clean", account=AccountFactory())  # one account's run: not the verdict
    PricingAnomalyFactory()
    PricingAnomalyFactory()
    board = read()
    assert board.reconciliation == latest
    assert board.anomalies == 2 and len(board.latest_anomalies) == 2
    assert board.pending_approvals == 0 == pending_approvals_count()


def test_rollup_refresh_is_idempotent_and_matches_the_ledger():
    account = funded_account("100.00")
    charge_for(account, "4.00", route="/api/chat")
    ledger_rollup_refresh()
    first = list(LedgerDay.objects.values_list("kind", "route", "total", "entries").order_by("kind"))
    ledger_rollup_refresh()
    assert list(LedgerDay.objects.values_list("kind", "route", "total", "entries").order_by("kind")) == first
    assert first == [
        ("charge", "/api/chat", Decimal("-4.000000000"), 1),
        ("grant", "", Decimal("100.000000000"), 1),
    ]
    wallet_day = WalletDay.objects.get()
    assert (wallet_day.account, wallet_day.charged, wallet_day.entries) == (account, Decimal("4.00"), 2)
    assert LedgerEntry.objects.count() == 2
