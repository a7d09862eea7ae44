"""Bank-style concurrency: many threads move credits among a few accounts.

Each move is a charge on one account followed, only if it succeeded, by a
grant of the same amount to another: two single-account transactions, as
the ledger never locks two accounts at once. When every thread is done the
total is what it was, no balance went negative, and every wallet still
equals its ledger.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.db.models import Sum

from billing.exceptions import InsufficientCredits
from billing.models import LedgerEntry, Wallet
from billing.services import Actor, charge_create, grant_create
from tests.concurrency import run_concurrently
from tests.factories import default_credit_type, funded_account

THREADS = 8
MOVES_PER_THREAD = 40
START = Decimal("50.00")


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_moving_credits_among_accounts_conserves_the_total():
    credit_type = default_credit_type()
    accounts = [funded_account(START) for _ in range(4)]
    total_before = START * len(accounts)

    def worker(i: int) -> dict:
        rng = random.Random(i)
        moved = declined = 0
        for _ in range(MOVES_PER_THREAD):
            source, target = rng.sample(accounts, 2)
            amount = Decimal(rng.randint(1, 2500)) / 100
            try:
                charge_create(account=source, credit_type=credit_type, amount=amount, actor=Actor.system())
            except InsufficientCredits:
                declined += 1
                continue
            grant_create(account=target, credit_type=credit_type, amount=amount, actor=Actor.system())
            moved += 1
        return {"moved": moved, "declined": declined}

    results = run_concurrently(worker, THREADS, timeout=100)

    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    assert sum(r["moved"] for r in results) > 0
    wallets = list(Wallet.objects.filter(account__in=accounts))
    assert sum(w.balance for w in wallets) == total_before
    for wallet in wallets:
        assert wallet.balance >= 0 and wallet.held >= 0
        ledger = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
        assert ledger == wallet.balance
    assert not LedgerEntry.objects.filter(account__in=accounts, balance_after__lt=0).exists()
