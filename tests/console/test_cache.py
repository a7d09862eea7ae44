"""The dashboard caches what it sums from the rollup, per refresh: never a figure staler than the live tail.

The cached part is keyed by `RollupState.version`, new on every refresh; the
entries after the refresh's cut are read live on every page. So a new entry
shows on the next page (live), and so does a new refresh (a new key).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.models import RollupState
from console.selectors import _rolled_up, dashboard, rolled_cache_key, window_days
from console.services import ledger_rollup_refresh
from tests.factories import charge_for, default_credit_type, funded_account

pytestmark = pytest.mark.django_db


def board():
    return next(b for b in dashboard().credit_types if b.credit_type == default_credit_type())


def test_a_page_after_the_first_reads_the_rollup_from_the_cache():
    charge_for(funded_account("100.00"), "10.00")
    ledger_rollup_refresh()
    assert board().charged.window == Decimal("10.00")
    first, today = window_days(timezone.now())
    assert cache.get(rolled_cache_key(RollupState.objects.get(), first, today)) is not None
    with CaptureQueriesContext(connection) as second:
        assert board().charged.window == Decimal("10.00")
    assert not [q for q in second.captured_queries if "console_ledgerday" in q["sql"]]


def test_a_new_entry_shows_on_the_next_page_while_the_rollup_is_cached():
    account = funded_account("100.00")
    charge_for(account, "10.00")
    ledger_rollup_refresh()
    assert board().charged.window == Decimal("10.00")  # cached now
    charge_for(account, "2.50")  # after the cut: the live tail
    b = board()
    assert (b.charged.today, b.charged.window) == (Decimal("12.50"), Decimal("12.50"))
    assert [(line.account, line.spent) for line in b.top_accounts] == [(account, Decimal("12.50"))]


def test_a_new_refresh_shows_on_the_next_page():
    account = funded_account("100.00")
    charge_for(account, "10.00")
    ledger_rollup_refresh()
    assert board().charged.window == Decimal("10.00")  # cached under this refresh
    newcomer = funded_account("100.00")
    charge_for(newcomer, "30.00")
    ledger_rollup_refresh()  # the new entries are in the rollup now, not the tail
    b = board()
    assert b.charged.window == Decimal("40.00") and b.active_accounts.window == 2
    assert [line.account for line in b.top_accounts] == [newcomer, account]


def test_a_refresh_fills_the_cache_after_it_commits(django_capture_on_commit_callbacks):
    charge_for(funded_account("100.00"), "10.00")
    with django_capture_on_commit_callbacks(execute=True):
        ledger_rollup_refresh()
    first, today = window_days(timezone.now())
    assert cache.get(rolled_cache_key(RollupState.objects.get(), first, today)) is not None


def test_a_sum_read_while_a_refresh_committed_is_not_cached():
    charge_for(funded_account("100.00"), "10.00")
    ledger_rollup_refresh()
    before = RollupState.objects.get()  # a page read the state ...
    ledger_rollup_refresh()  # ... a refresh committed before it read the rollup's rows
    first, today = window_days(timezone.now())
    _rolled_up(before, first, today)
    assert cache.get(rolled_cache_key(before, first, today)) is None


def test_the_dashboard_works_without_redis(settings, caplog):
    charge_for(funded_account("100.00"), "10.00")
    ledger_rollup_refresh()
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.PooledRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    assert board().charged.window == Decimal("10.00")
    assert "dashboard cache unavailable" in caplog.text
