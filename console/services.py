"""The dashboard's rollup: per-day totals recomputed from the ledger, off the hot path.

`ledger_rollup_refresh` is the only writer of `console.models`. It recomputes
whole days and replaces their rows, so a run is idempotent and a late
committer (an entry whose transaction began before the previous run's cut
and committed after it) is counted by the next run rather than lost. It
recomputes the open days: from the day of the previous cut, less
`REFRESH_OVERLAP`, to now; the first run computes the whole window.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from config.rows import table_analyze
from console.models import LedgerDay, RollupState, WalletDay, WalletWindow
from console.selectors import day_start, ledger_day_totals, rolled_up_warm, wallet_day_totals, window_days

# A day is recomputed until its end lies this far behind the previous cut,
# so an entry committed a little after midnight into yesterday still counts.
REFRESH_OVERLAP = timedelta(minutes=10)


@dataclass(frozen=True)
class RollupRefresh:
    first_day: date
    rolled_until: datetime
    ledger_days: int
    wallet_days: int


def ledger_rollup_refresh(*, now: datetime | None = None) -> RollupRefresh:
    """Recompute the rollup's open days up to `now` and move `rolled_until` there."""
    now = now or timezone.now()
    window_first, _ = window_days(now)
    with transaction.atomic():
        # The one state row, created once; its lock makes concurrent runs take turns.
        RollupState.objects.bulk_create([RollupState(pk=1)], ignore_conflicts=True)
        state = RollupState.objects.select_for_update().get(pk=1)
        first = window_first
        if state.rolled_until is not None:
            first = max(window_first, timezone.localdate(state.rolled_until - REFRESH_OVERLAP))
        start = day_start(first)
        LedgerDay.objects.filter(day__gte=first).delete()
        WalletDay.objects.filter(day__gte=first).delete()
        # Days that left the window are not read again.
        LedgerDay.objects.filter(day__lt=window_first).delete()
        WalletDay.objects.filter(day__lt=window_first).delete()
        ledger_days = LedgerDay.objects.bulk_create(
            [
                LedgerDay(
                    day=row["day"],
                    credit_type_id=row["credit_type_id"],
                    kind=row["kind"],
                    route=row["route"],
                    total=row["total"],
                    entries=row["entries"],
                )
                for row in ledger_day_totals(start, now)
            ],
            batch_size=2000,
        )
        wallet_days = WalletDay.objects.bulk_create(
            [
                WalletDay(
                    day=row["day"],
                    credit_type_id=row["credit_type_id"],
                    account_id=row["account_id"],
                    wallet_id=row["wallet_id"],
                    charged=row["charged"],
                    entries=row["entries"],
                )
                for row in wallet_day_totals(start, now)
            ],
            batch_size=2000,
        )
        # One row per wallet over the window: what the dashboard's wallet lists read.
        WalletWindow.objects.all().delete()
        WalletWindow.objects.bulk_create(
            [
                WalletWindow(
                    credit_type_id=row["credit_type"],
                    account_id=row["account"],
                    wallet_id=row["wallet"],
                    charged=row["total"],
                )
                for row in WalletDay.objects.filter(day__gte=window_first)
                .values("credit_type", "account", "wallet")
                .annotate(total=Sum("charged"))
                .order_by()
            ],
            batch_size=2000,
        )
        # The tables were just rebuilt: the dashboard's joins need their real size.
        for model in (LedgerDay, WalletDay, WalletWindow):
            table_analyze(model)
        state.rolled_until = now
        state.window_first = window_first
        state.refreshed_at = timezone.now()
        state.version = uuid.uuid4()
        state.save(update_fields=["rolled_until", "window_first", "refreshed_at", "version"])
        # The dashboard's cached part is keyed by the new version: fill it now rather
        # than on the next page. Robust: a failure here only costs that page the sums.
        transaction.on_commit(lambda: rolled_up_warm(now=now), robust=True)
    return RollupRefresh(first_day=first, rolled_until=now, ledger_days=len(ledger_days), wallet_days=len(wallet_days))
