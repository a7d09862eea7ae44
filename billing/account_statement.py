"""Account statements: opening balance, every entry of a period, closing balance, and whether the chain verifies.

A read (like selectors.py): it never locks a wallet. The period is by
`created_at`, from inclusive, to exclusive; entries in chain order (id).

* opening: the `balance_after` of the wallet's last entry before the period
  (zero if none);
* closing: the `balance_after` of the period's last entry (the opening if
  the period has none). Opening plus the period's amounts equals the
  closing whenever each entry's balance_after is its predecessor's plus its
  amount, which is what `chain_verified` also proves;
* chain_verified: every entry of the period has a valid hash over its fields
  and the previous entry's hash (the first links to the entry before the
  period), under a configured key, and continues the balance. For a period
  that runs to now, the wallet's chain head must also be the last entry.

Entries are read through an iterator, so the CSV export of a long period
streams with flat memory; the JSON answer is capped (`STATEMENT_MAX_ENTRIES`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from accounts.models import Account
from billing import chain
from billing.api_kit import as_time, money
from billing.models import LedgerEntry, Wallet
from pricing.models import CreditType

STATEMENT_MAX_ENTRIES = 10_000


class AccountStatement:
    """One account's statement in one credit type over [start, end); iterate `entries()` once, then read the rest."""

    def __init__(
        self, *, account: Account, credit_type: CreditType, start: datetime | None, end: datetime | None
    ) -> None:
        self.account = account
        self.credit_type = credit_type
        self.start = start
        self.end = end
        self.wallet = Wallet.objects.filter(account=account, credit_type=credit_type).first()
        self.opening = Decimal(0)
        self._prev_hash = ""
        if self.wallet is not None and start is not None:
            before = (
                LedgerEntry.objects.filter(account=account, credit_type=credit_type, created_at__lt=start)
                .order_by("-id")
                .values_list("balance_after", "entry_hash")
                .first()
            )
            if before is not None:
                self.opening, self._prev_hash = before
        self.closing = self.opening
        self.total = Decimal(0)
        self.count = 0
        self.chain_verified = True
        self._done = False

    def _queryset(self):
        entries = LedgerEntry.objects.filter(account=self.account, credit_type=self.credit_type)
        if self.start is not None:
            entries = entries.filter(created_at__gte=self.start)
        if self.end is not None:
            entries = entries.filter(created_at__lt=self.end)
        return entries.select_related("related_entry", "price_version").order_by("id")

    def count_entries(self, limit: int) -> int:
        """How many entries the period has, counting no further than `limit` + 1."""
        if self.wallet is None:
            return 0
        return self._queryset().values("id")[: limit + 1].count()

    def entries(self) -> Iterator[LedgerEntry]:
        """The period's entries in chain order, verifying each as it passes."""
        if self.wallet is None:
            self._done = True
            return
        keys = settings.CREDITLEDGER_LEDGER_KEYS
        prev_hash, balance = self._prev_hash, self.opening
        for entry in self._queryset().iterator(chunk_size=2000):
            entry.credit_type = self.credit_type
            entry.account = self.account
            if (
                entry.key_id not in keys
                or chain.entry_hash(entry, prev_hash=prev_hash, key_id=entry.key_id) != entry.entry_hash
                or entry.balance_after != balance + entry.amount
            ):
                self.chain_verified = False
            prev_hash, balance = entry.entry_hash, entry.balance_after
            self.total += entry.amount
            self.count += 1
            self.closing = entry.balance_after
            yield entry
        self._done = True


# --- CSV (the API's ?format=csv and the admin's download) ---------------------------------

CSV_COLUMNS = (
    "line",
    "id",
    "created_at",
    "kind",
    "amount",
    "balance_after",
    "related_entry",
    "task_id",
    "route",
    "description",
    "entry_hash",
    "chain_verified",
)


def _cell(text: str) -> str:
    """Client-supplied text that a spreadsheet would run as a formula, made inert with a leading quote."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def statement_csv_lines(statement: AccountStatement) -> Iterator[str]:
    """The statement as CSV lines: a header, an opening line, one line per entry, a closing line."""
    writer = csv.writer(_Echo())
    credit_type = statement.credit_type
    yield writer.writerow(CSV_COLUMNS)
    start = as_time(statement.start) if statement.start else ""
    yield writer.writerow(("opening", "", start, "", "", money(statement.opening, credit_type), "", "", "", "", "", ""))
    for entry in statement.entries():
        yield writer.writerow(
            (
                "entry",
                entry.public_id,
                as_time(entry.created_at),
                entry.kind,
                money(entry.amount, credit_type),
                money(entry.balance_after, credit_type),
                entry.related_entry.public_id if entry.related_entry_id else "",
                _cell(entry.task_id),
                _cell(entry.route),
                _cell(entry.description),
                entry.entry_hash,
                "",
            )
        )
    end = as_time(statement.end) if statement.end else ""
    verified = "true" if statement.chain_verified else "false"
    yield writer.writerow(
        ("closing", "", end, "", "", money(statement.closing, credit_type), "", "", "", "", "", verified)
    )
