"""The dashboard's reads: per credit type, today and the last 30 days.

Fast at any ledger size without a row that every charge writes: closed and
open days come from the per-day rollup (`console.models`, refreshed every
minute by `console.tasks.rollup_ledger`, off the hot path); only the entries
after `RollupState.rolled_until` are aggregated live, through the ledger's
`created_at` index. Before the first refresh that tail is the whole window,
which is right, only slower. The window is the 30 calendar days ending
today, in settings.TIME_ZONE.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, DecimalField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Account
from approvals.selectors import pending_approvals
from billing.models import Hold, LedgerEntry, ReconciliationRun, Wallet
from console.models import LedgerDay, RollupState, WalletDay, WalletWindow
from pricing.models import CreditType, PricingAnomaly

WINDOW_DAYS = 30
TOP_ACCOUNTS = 10
TOP_ROUTES = 10
LOW_BALANCES = 10
# "Low on balance": at its pace over the window, the wallet's available
# credits last fewer than this many days.
LOW_BALANCE_DAYS = 7
LATEST_ANOMALIES = 3


# --- days and bounds -----------------------------------------------------------


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the current time zone (settings.TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def window_days(now: datetime) -> tuple[date, date]:
    """The window's first day and today: 30 calendar days, today included."""
    today = timezone.localdate(now)
    return today - timedelta(days=WINDOW_DAYS - 1), today


# --- aggregates of the ledger (the rollup's source, and the dashboard's tail) ---


def ledger_day_totals(start: datetime, end: datetime) -> list[dict]:
    """Entries created in [start, end) summed by day, credit type, kind and route (the `created_at` index)."""
    return list(
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at"))
        .values("day", "credit_type_id", "kind", "route")
        .annotate(total=Sum("amount"), entries=Count("id"))
        .order_by()
    )


def wallet_day_totals(start: datetime, end: datetime) -> list[dict]:
    """Entries created in [start, end) by day and wallet: what each wallet was charged, and its entry count."""
    return list(
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at"))
        .values("day", "credit_type_id", "account_id", "wallet_id")
        .annotate(charged=-Sum("amount", filter=Q(kind=LedgerEntry.Kind.CHARGE), default=0), entries=Count("id"))
        .order_by()
    )


def _tail_totals(start: datetime, end: datetime) -> tuple[list[dict], list[dict]]:
    """`ledger_day_totals` and `wallet_day_totals` of [start, end) in one query (the tail is short: summed here)."""
    by_day: dict[tuple, dict] = {}
    by_wallet: dict[tuple, dict] = {}
    rows = (
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at"))
        .values("day", "credit_type_id", "kind", "route", "account_id", "wallet_id")
        .annotate(total=Sum("amount"), entries=Count("id"))
        .order_by()
    )
    for row in rows:
        key = (row["day"], row["credit_type_id"], row["kind"], row["route"])
        day = by_day.setdefault(
            key, dict(zip(("day", "credit_type_id", "kind", "route"), key, strict=True), total=0, entries=0)
        )
        day["total"] += row["total"]
        day["entries"] += row["entries"]
        key = (row["day"], row["credit_type_id"], row["account_id"], row["wallet_id"])
        names = ("day", "credit_type_id", "account_id", "wallet_id")
        wallet = by_wallet.setdefault(key, dict(zip(names, key, strict=True), charged=Decimal(0), entries=0))
        if row["kind"] == LedgerEntry.Kind.CHARGE:
            wallet["charged"] -= row["total"]
        wallet["entries"] += row["entries"]
    return list(by_day.values()), list(by_wallet.values())


# --- the dashboard -----------------------------------------------------------


@dataclass
class Figure:
    """One figure for today and for the whole window."""

    today: Decimal | int = 0
    window: Decimal | int = 0


@dataclass
class RouteRate:
    route: str
    charged: Decimal
    refunded: Decimal

    @property
    def rate(self) -> Decimal | None:
        """Refunded over charged, as a percentage; None when the route charged nothing in the window."""
        return (self.refunded * 100 / self.charged).quantize(Decimal("0.1")) if self.charged else None


@dataclass
class DayPoint:
    day: date
    charged: Decimal = Decimal(0)
    granted: Decimal = Decimal(0)
    refunded: Decimal = Decimal(0)


@dataclass
class WalletLine:
    """An account's wallet in this credit type, with its spend over the window."""

    account: Account
    spent: Decimal
    available: Decimal | None = None

    @property
    def days_left(self) -> Decimal | None:
        """Days its available credits last at its pace over the window."""
        if self.available is None or not self.spent:
            return None
        return (self.available * WINDOW_DAYS / self.spent).quantize(Decimal("0.1"))


@dataclass
class CreditTypeBoard:
    credit_type: CreditType
    charged: Figure = field(default_factory=Figure)
    granted: Figure = field(default_factory=Figure)
    refunded: Figure = field(default_factory=Figure)
    expired: Figure = field(default_factory=Figure)
    active_accounts: Figure = field(default_factory=Figure)
    held: Decimal = Decimal(0)
    pending_holds: int = 0
    routes: list[RouteRate] = field(default_factory=list)
    days: list[DayPoint] = field(default_factory=list)
    top_accounts: list[WalletLine] = field(default_factory=list)
    low_balances: list[WalletLine] = field(default_factory=list)


@dataclass
class Dashboard:
    now: datetime
    first_day: date
    today: date
    rolled_until: datetime | None
    credit_types: list[CreditTypeBoard]
    reconciliation: ReconciliationRun | None
    anomalies: int
    latest_anomalies: list[PricingAnomaly]
    pending_approvals: int


def _tail_from(state: RollupState | None, first: date) -> datetime:
    """Where the rollup stops: live aggregation starts here (the window's start if the rollup is behind it)."""
    start = day_start(first)
    if state is None or state.rolled_until is None:
        return start
    return max(state.rolled_until, start)


def dashboard(*, now: datetime | None = None) -> Dashboard:
    """Every figure of the admin index, for every credit type with activity in the window or pending holds."""
    now = now or timezone.now()
    first, today = window_days(now)
    end = day_start(today + timedelta(days=1))
    state = RollupState.objects.filter(pk=1).first()
    tail_from = _tail_from(state, first)
    # The rollup's rows hold only entries before rolled_until; the tail, every entry from there on.
    day_rows = list(
        LedgerDay.objects.filter(day__gte=first, day__lte=today).values(
            "day", "credit_type_id", "kind", "route", "total", "entries"
        )
    )
    tail_rows, tail_wallets = _tail_totals(tail_from, end) if tail_from < end else ([], [])

    held = {
        row["credit_type"]: row
        for row in Hold.objects.filter(status=Hold.Status.PENDING)
        .values("credit_type")
        .annotate(total=Sum("amount"), count=Count("id"))
        .order_by()
    }
    boards: dict[int, CreditTypeBoard] = {}
    credit_types = {ct.pk: ct for ct in CreditType.objects.all()}

    def board(credit_type_id: int) -> CreditTypeBoard:
        if credit_type_id not in boards:
            ct = credit_types[credit_type_id]
            boards[credit_type_id] = CreditTypeBoard(
                credit_type=ct, days=[DayPoint(day=first + timedelta(days=n)) for n in range(WINDOW_DAYS)]
            )
        return boards[credit_type_id]

    routes: dict[int, dict[str, RouteRate]] = defaultdict(dict)
    for row in [*day_rows, *tail_rows]:
        b = board(row["credit_type_id"])
        kind, total, day = row["kind"], row["total"], row["day"]
        point = b.days[(day - first).days]
        figure = {"charge": b.charged, "grant": b.granted, "refund": b.refunded, "expiry": b.expired}.get(kind)
        value = abs(total)
        if figure is not None:
            figure.window += value
            if day == today:
                figure.today += value
        if kind == LedgerEntry.Kind.CHARGE:
            point.charged += value
        elif kind == LedgerEntry.Kind.GRANT:
            point.granted += value
        elif kind == LedgerEntry.Kind.REFUND:
            point.refunded += value
        if kind in (LedgerEntry.Kind.CHARGE, LedgerEntry.Kind.REFUND):
            rate = routes[row["credit_type_id"]].setdefault(
                row["route"], RouteRate(route=row["route"], charged=Decimal(0), refunded=Decimal(0))
            )
            if kind == LedgerEntry.Kind.CHARGE:
                rate.charged += value
            else:
                rate.refunded += value
    for credit_type_id, row in held.items():
        b = board(credit_type_id)
        b.held, b.pending_holds = row["total"], row["count"]

    for credit_type_id, b in boards.items():
        b.routes = sorted(
            routes[credit_type_id].values(),
            key=lambda r: (-(r.rate if r.rate is not None else Decimal(-1)), -r.charged, r.route),
        )[:TOP_ROUTES]
        mine = [w for w in tail_wallets if w["credit_type_id"] == credit_type_id]
        _wallet_figures(b, first=first, today=today, tail=mine, state=state, tail_from=tail_from, end=end)

    run = ReconciliationRun.objects.filter(account__isnull=True).order_by("-id").first()
    anomalies = PricingAnomaly.objects.filter(created_at__gte=day_start(first))
    return Dashboard(
        now=now,
        first_day=first,
        today=today,
        rolled_until=state.rolled_until if state else None,
        # Every credit type with entries in the window or pending holds, busiest first.
        credit_types=sorted(boards.values(), key=lambda b: (-b.charged.window, b.credit_type.code)),
        reconciliation=run,
        anomalies=anomalies.count(),
        latest_anomalies=list(anomalies.select_related("credit_type").order_by("-id")[:LATEST_ANOMALIES]),
        pending_approvals=pending_approvals_count(),
    )


def _per_wallet(
    credit_type: CreditType, first: date, today: date, state: RollupState | None, *, balances: bool = False
) -> QuerySet:
    """The rollup's spend per wallet over the window: rows of wallet, account and `spent` (and balance, held).

    `WalletWindow` (one row per wallet) when the last refresh summed this very
    window, else the sum of `WalletDay` rows (one per wallet and day: slower,
    only until the next refresh after midnight, or for a window in the past).
    """
    columns = ("wallet", "account", *(("wallet__balance", "wallet__held") if balances else ()))
    if state is not None and state.window_first == first:
        return WalletWindow.objects.filter(credit_type=credit_type).values(*columns).annotate(spent=F("charged"))
    return (
        WalletDay.objects.filter(credit_type=credit_type, day__gte=first, day__lte=today)
        .values(*columns)
        .annotate(spent=Sum("charged"))
        .order_by()
    )


def _wallet_figures(
    b: CreditTypeBoard,
    *,
    first: date,
    today: date,
    tail: list[dict],
    state: RollupState | None,
    tail_from: datetime,
    end: datetime,
) -> None:
    """Active accounts, top spenders and low balances: the rollup's wallets plus the live tail.

    The SQL reads only the top rows of the rollup; wallets in the tail (a
    minute of activity) are re-summed exactly and merged, so the lists are
    exact without reading every wallet.
    """
    per_wallet = _per_wallet(b.credit_type, first, today, state)
    tail_spent: dict[int, Decimal] = defaultdict(Decimal)
    tail_today: set[int] = set()
    for row in tail:
        tail_spent[row["wallet_id"]] += row["charged"]
        if row["day"] == today:
            tail_today.add(row["wallet_id"])

    # The tail's wallets as a subquery (the created_at index), not a list of ids: a
    # minute can touch thousands of wallets, and a long IN list costs more to send than to run.
    tail_entries = LedgerEntry.objects.filter(credit_type=b.credit_type, created_at__lt=end)
    tail_wallets = tail_entries.filter(created_at__gte=tail_from).values("wallet_id")

    # The tail's wallets in one query: their balance, their spend in the rollup, and whether the rollup has them today.
    rolled_today = WalletDay.objects.filter(credit_type=b.credit_type, day=today)
    tail_rows = list(
        Wallet.objects.filter(pk__in=tail_wallets)
        .annotate(
            rolled=Subquery(per_wallet.filter(wallet=OuterRef("pk")).values("spent")[:1]),
            seen_today=Exists(rolled_today.filter(wallet=OuterRef("pk"))),
        )
        .values_list("pk", "balance", "held", "rolled", "seen_today")
    )
    rolled = {w: spent for w, _, _, spent, _ in tail_rows if spent is not None}
    known_today = {w for w, _, _, _, seen in tail_rows if seen}

    # Active accounts: one wallet per account and credit type, so accounts = wallets.
    b.active_accounts.window = per_wallet.count() + len(tail_spent.keys() - rolled.keys())
    b.active_accounts.today = rolled_today.count() + len(tail_today - known_today)

    spent = {w: rolled.get(w, Decimal(0)) + value for w, value in tail_spent.items()}
    top = {
        row["wallet"]: row["spent"]
        for row in per_wallet.filter(spent__gt=0).order_by("-spent", "wallet")[:TOP_ACCOUNTS]
    }
    top.update(spent)
    top_ids = sorted((w for w, s in top.items() if s > 0), key=lambda w: (-top[w], w))[:TOP_ACCOUNTS]

    days_left = ExpressionWrapper(
        (F("wallet__balance") - F("wallet__held")) * WINDOW_DAYS / F("spent"),
        output_field=DecimalField(max_digits=40, decimal_places=9),
    )
    # Low balances: the rollup's worst (SQL, wallets outside the tail), then the tail's wallets re-summed.
    candidates: dict[int, tuple[Decimal, Decimal]] = {
        row["wallet"]: (row["spent"], row["wallet__balance"] - row["wallet__held"])
        for row in _per_wallet(b.credit_type, first, today, state, balances=True)
        .filter(spent__gt=0)
        .exclude(wallet__in=tail_wallets)
        .annotate(days_left=days_left)
        .filter(days_left__lt=LOW_BALANCE_DAYS)
        .order_by("days_left", "wallet")[:LOW_BALANCES]
    }
    for wallet_id, balance, held, _, _ in tail_rows:
        if spent.get(wallet_id, 0) > 0:
            candidates[wallet_id] = (spent[wallet_id], balance - held)
    lows = sorted(
        (w for w, (s, available) in candidates.items() if available * WINDOW_DAYS / s < LOW_BALANCE_DAYS),
        key=lambda w: (candidates[w][1] / candidates[w][0], w),
    )[:LOW_BALANCES]

    wallets = Wallet.objects.select_related("account").in_bulk({*top_ids, *lows})
    b.top_accounts = [
        WalletLine(account=wallets[w].account, spent=top[w], available=wallets[w].available) for w in top_ids
    ]
    b.low_balances = [
        WalletLine(account=wallets[w].account, spent=candidates[w][0], available=wallets[w].available) for w in lows
    ]


def pending_approvals_count() -> int:
    """Four-eyes requests waiting for a decision (pending and not yet expired)."""
    return pending_approvals().count()
