"""Per-day totals of the ledger, kept off the hot path for the dashboard.

A charge writes nothing here: the `console.tasks.rollup_ledger` task
(every minute) recomputes the open days from the ledger's `created_at`
index and replaces their rows (`console.services.ledger_rollup_refresh`).
The dashboard reads these rows for the part of its window they cover and
aggregates the ledger itself only after `RollupState.rolled_until`, a minute
or so of entries (docs/performance.md, "The dashboard").

Nothing here is money of record: the ledger is. These rows may be dropped
and rebuilt at any time.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from accounts.models import Account
from billing.models import Wallet
from config.money import MoneyField
from pricing.models import CreditType


class LedgerDay(models.Model):
    """One day's entries of one kind and route in one credit type: their sum and count."""

    day = models.DateField()  # in settings.TIME_ZONE
    credit_type = models.ForeignKey(CreditType, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=16)
    route = models.CharField(max_length=255, blank=True, default="")
    total = MoneyField(help_text="Signed sum of the entries' amounts.")
    entries = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            # Also the dashboard's range read (credit type, days in the window).
            models.UniqueConstraint(fields=["credit_type", "day", "kind", "route"], name="console_ledgerday_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.credit_type_id} {self.kind} {self.route}: {self.total}"


class WalletDay(models.Model):
    """One wallet's activity on one day: what it was charged, and how many entries it had."""

    day = models.DateField()
    credit_type = models.ForeignKey(CreditType, on_delete=models.CASCADE, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="+", db_index=False)
    charged = MoneyField(default=Decimal(0), help_text="Sum of the day's charges, positive.")
    entries = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            # Also the dashboard's reads: active accounts, top spenders and the spend
            # pace of low balances, all a range of days in one credit type.
            models.UniqueConstraint(fields=["credit_type", "day", "wallet"], name="console_walletday_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} wallet {self.wallet_id}: {self.charged}"


class WalletWindow(models.Model):
    """One wallet's totals over the rollup's whole window (`RollupState.window_first` to its cut).

    Rebuilt from `WalletDay` by every refresh, so the dashboard's top spenders,
    low balances and active accounts read one row per wallet, not one per
    wallet and day.
    """

    credit_type = models.ForeignKey(CreditType, on_delete=models.CASCADE, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    # Unique: the dashboard's look-up of the wallets in its live tail.
    wallet = models.OneToOneField(Wallet, on_delete=models.CASCADE, related_name="+")
    charged = MoneyField(default=Decimal(0), help_text="Sum of the window's charges, positive.")

    class Meta:
        indexes = [
            # Top spenders in a credit type: the first rows of this index.
            models.Index(fields=["credit_type", "-charged"], name="console_walletwindow_top"),
        ]

    def __str__(self) -> str:
        return f"wallet {self.wallet_id}: {self.charged}"


class RollupState(models.Model):
    """The one row saying how far the rollup reaches: entries before `rolled_until` are in it.

    Written only by the rollup task (under a row lock, so two runs take turns),
    never by a charge.
    """

    rolled_until = models.DateTimeField(null=True, blank=True)
    # The first day of the window `WalletWindow` sums (the window as of the last refresh).
    window_first = models.DateField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    # New on every refresh: the dashboard caches what it sums from the rollup under
    # it (console.selectors), so a refresh retires every cached value at once.
    version = models.UUIDField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="console_rollupstate_single_row")]

    def __str__(self) -> str:
        return f"rolled until {self.rolled_until}"
