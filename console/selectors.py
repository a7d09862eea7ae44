"""The dashboard's reads: per credit type, today and the last 30 days.

Fast at any ledger size without a row that every charge writes: closed and
open days come from the per-day rollup (`console.models`, refreshed every
minute by `console.tasks.rollup_ledger`, off the hot path); only the entries
after `RollupState.rolled_until` are aggregated live, through the ledger's
`created_at` index. Before the first refresh that tail is the whole window,
which is right, only slower. The window is the 30 calendar days ending
today, in settings.TIME_ZONE.

What is summed from the rollup is summed once per refresh and cached in
Redis under the refresh's `RollupState.version` (`RolledUp`): a page reads
it, then only the live tail and what must be live (balances, holds, the
health cards). Nothing cached authorises anything: this is a read-only report.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Account
from approvals.selectors import pending_approvals
from billing.models import Hold, LedgerEntry, ReconciliationRun, Wallet
from console.models import LedgerDay, RollupState, WalletDay, WalletWindow
from pricing.models import CreditType, PricingAnomaly

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class TailWallet:
    """A wallet with entries in the live tail, and what the merge with the rollup needs of it."""

    wallet: int
    credit_type: int
    charged: Decimal  # by the tail's charges, positive
    today: bool  # has entries today in the tail
    balance: Decimal
    held: Decimal
    rolled: Decimal | None  # its spend in the rollup's window; None: not in the rollup
    rolled_today: bool  # the rollup has it today


def _tail_wallets(start: datetime, end: datetime, *, first: date, today: date, state) -> list[TailWallet]:
    """Every wallet with entries in [start, end), summed in one query of the tail (the `created_at` index).

    One row per wallet, however many entries it had: the tail's charges and
    whether any entry is today's, with the wallet's balance and held and its
    spend and today's presence in the rollup (unique-index look-ups per wallet).
    """
    rolled_spend = _rolled_spent(first, today, state).filter(wallet=OuterRef("wallet_id")).values("spent")[:1]
    rows = (
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("wallet_id", "credit_type_id")
        .annotate(
            charged=-Sum("amount", filter=Q(kind=LedgerEntry.Kind.CHARGE), default=0),
            todays=Count("id", filter=Q(created_at__gte=day_start(today))),
            balance=Max("wallet__balance"),
            held=Max("wallet__held"),
            rolled=Subquery(rolled_spend),
            rolled_today=Exists(
                WalletDay.objects.filter(
                    credit_type=OuterRef("credit_type_id"), day=today, wallet=OuterRef("wallet_id")
                )
            ),
        )
        .values_list("wallet_id", "credit_type_id", "charged", "todays", "balance", "held", "rolled", "rolled_today")
        .order_by()
    )
    return [
        TailWallet(wallet, credit, charged, todays > 0, balance, held, rolled, rolled_today)
        for wallet, credit, charged, todays, balance, held, rolled, rolled_today in rows
    ]


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


def _fold(
    boards: dict[int, CreditTypeBoard],
    routes: dict[int, dict[str, RouteRate]],
    rows,
    *,
    first: date,
    today: date,
) -> None:
    """Add per-day totals (rows of day, credit type, kind, route, total) to the boards' figures, chart and routes."""
    for row in rows:
        credit_type_id = row["credit_type_id"]
        b = boards.get(credit_type_id)
        if b is None:
            b = boards[credit_type_id] = CreditTypeBoard(
                credit_type=None, days=[DayPoint(day=first + timedelta(days=n)) for n in range(WINDOW_DAYS)]
            )
        kind, day = row["kind"], row["day"]
        value = abs(row["total"])
        point = b.days[(day - first).days]
        if kind == LedgerEntry.Kind.CHARGE:
            figure, point.charged = b.charged, point.charged + value
        elif kind == LedgerEntry.Kind.GRANT:
            figure, point.granted = b.granted, point.granted + value
        elif kind == LedgerEntry.Kind.REFUND:
            figure, point.refunded = b.refunded, point.refunded + value
        elif kind == LedgerEntry.Kind.EXPIRY:
            figure = b.expired
        else:
            continue
        figure.window += value
        if day == today:
            figure.today += value
        if kind in (LedgerEntry.Kind.CHARGE, LedgerEntry.Kind.REFUND):
            rate = routes[credit_type_id].get(row["route"])
            if rate is None:
                rate = routes[credit_type_id][row["route"]] = RouteRate(
                    route=row["route"], charged=Decimal(0), refunded=Decimal(0)
                )
            if kind == LedgerEntry.Kind.CHARGE:
                rate.charged += value
            else:
                rate.refunded += value


# --- the rollup's part, cached per refresh -------------------------------------


@dataclass
class RolledUp:
    """The rollup's figures for one window, per credit type id: everything before `rolled_until`.

    A function of one refresh alone (its rows change only when the next
    refresh replaces them, with a new `RollupState.version`), so it is summed
    once per refresh and window and cached under that version; each page adds
    only the live tail on top. The boards carry no credit type (each page
    attaches the current row).
    """

    boards: dict[int, CreditTypeBoard] = field(default_factory=dict)
    routes: dict[int, dict[str, RouteRate]] = field(default_factory=lambda: defaultdict(dict))
    wallets: dict[int, int] = field(default_factory=dict)  # wallets with entries in the window
    wallets_today: dict[int, int] = field(default_factory=dict)
    top: dict[int, dict[int, Decimal]] = field(default_factory=dict)  # the rollup's top spenders: wallet -> spent


# Only a bound on Redis memory: a value is never stale (its key names one refresh).
ROLLED_CACHE_TTL_S = 600


# Part of the key: bump it when `RolledUp` changes shape, so a deploy never unpickles an older layout.
ROLLED_LAYOUT = 1


def rolled_cache_key(state: RollupState, first: date, today: date) -> str:
    return f"console:dashboard:{ROLLED_LAYOUT}:{state.version}:{first.isoformat()}:{today.isoformat()}"


def _rolled_up(state: RollupState | None, first: date, today: date) -> RolledUp:
    """The rollup's figures for [first, today]: from Redis when this refresh was already summed.

    Never stale: the key carries the refresh's `version`, new on every
    refresh, so one refresh retires every value cached before it. A value
    summed while a refresh committed (state read before it, rows after) is
    not stored: the version is checked again first. Redis trouble only costs
    the reads.
    """
    if state is None or state.version is None:
        return RolledUp()  # no refresh yet: the whole window is the live tail
    key = rolled_cache_key(state, first, today)
    try:
        cached = cache.get(key)
    except Exception:
        logger.warning("dashboard cache unavailable; reading the rollup", exc_info=True)
        cached = None
    if cached is not None:
        return cached
    rolled = _rolled_read(state, first, today)
    if RollupState.objects.filter(pk=1, version=state.version).exists():
        try:
            cache.set(key, rolled, timeout=ROLLED_CACHE_TTL_S)
        except Exception:
            logger.warning("dashboard cache write failed", exc_info=True)
    return rolled


def rolled_up_warm(*, now: datetime | None = None) -> None:
    """Sum the current refresh's part for today's window into the cache, so no page pays for it (after commit)."""
    first, today = window_days(now or timezone.now())
    _rolled_up(RollupState.objects.filter(pk=1).first(), first, today)


def _rolled_read(state: RollupState, first: date, today: date) -> RolledUp:
    rolled = RolledUp()
    rows = LedgerDay.objects.filter(day__gte=first, day__lte=today).values(
        "day", "credit_type_id", "kind", "route", "total"
    )
    _fold(rolled.boards, rolled.routes, rows, first=first, today=today)
    # Every wallet row comes from entries, which also made day rows: the boards' credit types cover them.
    for credit_type_id in rolled.boards:
        per_wallet = _per_wallet(credit_type_id, first, today, state)
        rolled.wallets[credit_type_id] = per_wallet.count()
        rolled.wallets_today[credit_type_id] = WalletDay.objects.filter(
            credit_type_id=credit_type_id, day=today
        ).count()
        rolled.top[credit_type_id] = {
            row["wallet"]: row["spent"]
            for row in per_wallet.filter(spent__gt=0).order_by("-spent", "wallet")[:TOP_ACCOUNTS]
        }
    return rolled


# --- the page: the rollup's part plus the live tail ----------------------------


def dashboard(*, now: datetime | None = None) -> Dashboard:
    """Every figure of the admin index, for every credit type with activity in the window or pending holds.

    Per page: the rollup state, the cached rollup part (`_rolled_up`), the
    live tail by day and by wallet, credit types with their pending holds,
    per credit type the low balances (balances are live), the listed
    wallets, and the health cards' small reads (docs/performance.md).
    """
    now = now or timezone.now()
    first, today = window_days(now)
    end = day_start(today + timedelta(days=1))
    state = RollupState.objects.filter(pk=1).first()
    tail_from = _tail_from(state, first)
    rolled = _rolled_up(state, first, today)
    boards, routes = rolled.boards, rolled.routes
    tail_wallets: list[TailWallet] = []
    if tail_from < end:
        _fold(boards, routes, ledger_day_totals(tail_from, end), first=first, today=today)
        tail_wallets = _tail_wallets(tail_from, end, first=first, today=today, state=state)

    # Every credit type with what its pending holds hold, in one query (a few rows; the pending-holds index).
    pending = Hold.objects.filter(status=Hold.Status.PENDING, credit_type=OuterRef("pk")).values("credit_type")
    credit_types = {
        ct.pk: ct
        for ct in CreditType.objects.annotate(
            held=Subquery(pending.annotate(total=Sum("amount")).values("total")),
            pending_holds=Subquery(pending.annotate(count=Count("id")).values("count")),
        )
    }
    for ct in credit_types.values():
        if ct.pending_holds:
            b = boards.get(ct.pk)
            if b is None:
                b = boards[ct.pk] = CreditTypeBoard(
                    credit_type=None, days=[DayPoint(day=first + timedelta(days=n)) for n in range(WINDOW_DAYS)]
                )
            b.held, b.pending_holds = ct.held, ct.pending_holds

    for credit_type_id, b in boards.items():
        b.credit_type = credit_types[credit_type_id]
        b.routes = sorted(
            routes[credit_type_id].values(),
            key=lambda r: (-(r.rate if r.rate is not None else Decimal(-1)), -r.charged, r.route),
        )[:TOP_ROUTES]
    _wallet_figures(
        boards, rolled, first=first, today=today, tail=tail_wallets, state=state, tail_from=tail_from, end=end
    )

    run = ReconciliationRun.objects.filter(account__isnull=True).order_by("-id").first()
    # The latest few and, on each, how many in all: one query.
    latest = list(
        open_anomalies()
        .select_related("credit_type")
        .annotate(total=Window(Count("id")))
        .order_by("-id")[:LATEST_ANOMALIES]
    )
    return Dashboard(
        now=now,
        first_day=first,
        today=today,
        rolled_until=state.rolled_until if state else None,
        # Every credit type with entries in the window or pending holds, busiest first.
        credit_types=sorted(boards.values(), key=lambda b: (-b.charged.window, b.credit_type.code)),
        reconciliation=run,
        anomalies=latest[0].total if latest else 0,
        latest_anomalies=latest,
        pending_approvals=pending_approvals_count(now=now),
    )


def _per_wallet(
    credit_type_id: int, first: date, today: date, state: RollupState | None, *, balances: bool = False
) -> QuerySet:
    """The rollup's spend per wallet over the window: rows of wallet, account and `spent` (and balance, held).

    `WalletWindow` (one row per wallet) when the last refresh summed this very
    window, else the sum of `WalletDay` rows (one per wallet and day: slower,
    only until the next refresh after midnight, or for a window in the past).
    """
    columns = ("wallet", "account", *(("wallet__balance", "wallet__held") if balances else ()))
    return _rolled_spent(first, today, state, columns=columns).filter(credit_type_id=credit_type_id)


def _rolled_spent(first: date, today: date, state: RollupState | None, *, columns=("wallet",)) -> QuerySet:
    """`_per_wallet` of every credit type (a wallet has one): for look-ups by wallet."""
    if state is not None and state.window_first == first:
        return WalletWindow.objects.values(*columns).annotate(spent=F("charged"))
    return (
        WalletDay.objects.filter(day__gte=first, day__lte=today)
        .values(*columns)
        .annotate(spent=Sum("charged"))
        .order_by()
    )


def _wallet_figures(
    boards: dict[int, CreditTypeBoard],
    rolled: RolledUp,
    *,
    first: date,
    today: date,
    tail: list[TailWallet],
    state: RollupState | None,
    tail_from: datetime,
    end: datetime,
) -> None:
    """Active accounts, top spenders and low balances: the rollup's wallets plus the live tail.

    The rollup's counts and top rows come cached (`RolledUp`); wallets in the
    tail (a minute of activity) are re-summed exactly and merged, so the
    lists are exact without reading every wallet. Low balances read live
    balances, so that list is one query per credit type on every page.
    """
    lines: dict[int, tuple[list, list]] = {}
    for credit_type_id, b in boards.items():
        mine = [w for w in tail if w.credit_type == credit_type_id]
        lines[credit_type_id] = _wallet_lines(
            b, rolled, mine, first=first, today=today, state=state, tail_from=tail_from, end=end
        )
    # The listed wallets' accounts and balances, every credit type at once.
    wallets = Wallet.objects.select_related("account").in_bulk(
        {w for top, low in lines.values() for w, _ in (*top, *low)}
    )
    for credit_type_id, (top, low) in lines.items():
        b = boards[credit_type_id]
        b.top_accounts = [
            WalletLine(account=wallets[w].account, spent=spent, available=wallets[w].available) for w, spent in top
        ]
        b.low_balances = [
            WalletLine(account=wallets[w].account, spent=spent, available=wallets[w].available) for w, spent in low
        ]


def _wallet_lines(
    b: CreditTypeBoard,
    rolled: RolledUp,
    tail: list[TailWallet],
    *,
    first: date,
    today: date,
    state: RollupState | None,
    tail_from: datetime,
    end: datetime,
) -> tuple[list[tuple[int, Decimal]], list[tuple[int, Decimal]]]:
    """Set the board's active accounts; return its top spenders and low balances as (wallet, spent)."""
    credit_type_id = b.credit_type.pk
    # Active accounts: one wallet per account and credit type, so accounts = wallets.
    b.active_accounts.window = rolled.wallets.get(credit_type_id, 0) + sum(1 for w in tail if w.rolled is None)
    b.active_accounts.today = rolled.wallets_today.get(credit_type_id, 0) + sum(
        1 for w in tail if w.today and not w.rolled_today
    )

    spent = {w.wallet: (w.rolled or Decimal(0)) + w.charged for w in tail}
    top = {**rolled.top.get(credit_type_id, {}), **spent}
    top_ids = sorted((w for w, s in top.items() if s > 0), key=lambda w: (-top[w], w))[:TOP_ACCOUNTS]

    # Low balances: the rollup's worst (SQL, wallets outside the tail, live balances),
    # then the tail's wallets re-summed.
    candidates: dict[int, tuple[Decimal, Decimal]] = {}
    if state is not None:
        low = _per_wallet(credit_type_id, first, today, state, balances=True).filter(spent__gt=0)
        if tail:
            # The tail's wallets as a subquery (the created_at index), not a list of ids: a minute
            # can touch thousands of wallets, and a long IN list costs more to send than to run.
            low = low.exclude(
                wallet__in=LedgerEntry.objects.filter(
                    credit_type_id=credit_type_id, created_at__gte=tail_from, created_at__lt=end
                ).values("wallet_id")
            )
        days_left = ExpressionWrapper(
            (F("wallet__balance") - F("wallet__held")) * WINDOW_DAYS / F("spent"),
            output_field=DecimalField(max_digits=40, decimal_places=9),
        )
        candidates = {
            row["wallet"]: (row["spent"], row["wallet__balance"] - row["wallet__held"])
            for row in low.annotate(days_left=days_left)
            .filter(days_left__lt=LOW_BALANCE_DAYS)
            .order_by("days_left", "wallet")[:LOW_BALANCES]
        }
    for w in tail:
        if spent[w.wallet] > 0:
            candidates[w.wallet] = (spent[w.wallet], w.balance - w.held)
    lows = sorted(
        (w for w, (s, available) in candidates.items() if available * WINDOW_DAYS / s < LOW_BALANCE_DAYS),
        key=lambda w: (candidates[w][1] / candidates[w][0], w),
    )[:LOW_BALANCES]
    return [(w, top[w]) for w in top_ids], [(w, candidates[w][0]) for w in lows]


def open_anomalies() -> QuerySet[PricingAnomaly]:
    """Pricing anomalies nobody has marked resolved yet."""
    return PricingAnomaly.objects.filter(resolved_at__isnull=True)


def pending_approvals_count(*, now: datetime | None = None) -> int:
    """Four-eyes requests waiting for a decision (pending and not yet expired)."""
    return pending_approvals(now=now).count()
