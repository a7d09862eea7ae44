"""Daily spending limits: what is in force and what was spent (reads; the counting is the core's).

The limit is configuration, read by the debit's locking statement; the day's
usage is counted under the wallet lock in the debit's own transaction
(`billing.core.Posting.count_daily_usage`), so concurrent debits cannot
overshoot. The counter is keyed by the calendar day in
CREDITLEDGER_DAILY_LIMIT_TIMEZONE: a new day is a new row, and no job ever
resets anything. Usage is counted only while a limit applies.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from accounts.models import Account
from billing import statements
from billing.core import daily_limit_day, daily_limit_from, daily_limit_timezone
from billing.models import DailyUsage, Wallet
from pricing.models import CreditType

__all__ = ["daily_limit_day", "daily_limit_get", "daily_limit_timezone", "daily_usage_get"]


def daily_limit_get(*, account: Account, credit_type: CreditType) -> Decimal | None:
    """The daily limit on this account's spending of `credit_type`, or None.

    The account's override if it has one (an empty override means none);
    else its plan's trial or paid figure, from the registered plan limit
    source (billing/statements.py); else no limit. One query.
    """
    return daily_limit_from(*statements.daily_limit_row(account_id=account.pk, credit_type_id=credit_type.pk))


def daily_usage_get(*, wallet: Wallet, now: datetime | None = None) -> Decimal:
    """What the wallet has spent today (counted only while a limit applies)."""
    used = DailyUsage.objects.filter(wallet=wallet, day=daily_limit_day(now)).values_list("used", flat=True).first()
    return used if used is not None else Decimal(0)
