"""The in-process price cache: thread-safe, and never staler than the next charge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from billing.models import LedgerEntry
from billing.services import Actor, charge_create
from pricing.models import Price
from pricing.selectors import catalogue_cache_reloads, catalogue_snapshot
from pricing.services import UnitPrices, Usage, amount_exact, amount_round, price_create, price_quote
from tests.concurrency import run_concurrently
from tests.factories import PriceFactory, default_credit_type, funded_account
from tests.processes import child_database_url

ROOT = Path(__file__).resolve().parents[2]
USAGE = Usage(input_tokens=1000)


@pytest.mark.django_db
def test_look_ups_reuse_the_snapshot_while_the_catalogue_is_unchanged():
    PriceFactory(key="openai/gpt-4o")
    price_quote(key="openai/gpt-4o", usage=USAGE)
    before = catalogue_cache_reloads()
    for _ in range(5):
        price_quote(key="openai/gpt-4o", usage=USAGE)
    assert catalogue_cache_reloads() == before


@pytest.mark.django_db
def test_a_price_change_is_seen_by_the_next_look_up_not_after_the_ttl(settings):
    settings.PRICING_CACHE_TTL_S = 3600
    PriceFactory(key="openai/gpt-4o")
    assert price_quote(key="openai/gpt-4o", usage=USAGE).amount == Decimal("2.50")
    price_create(key="openai/gpt-4o", credit_type=default_credit_type(), per_1k_input_tokens="3")
    assert price_quote(key="openai/gpt-4o", usage=USAGE).amount == Decimal("3.00")


@pytest.mark.django_db
def test_the_snapshot_expires_after_the_ttl(settings):
    settings.PRICING_CACHE_TTL_S = 0
    PriceFactory(key="openai/gpt-4o")
    catalogue_snapshot()
    before = catalogue_cache_reloads()
    catalogue_snapshot()
    assert catalogue_cache_reloads() == before + 1


@pytest.mark.django_db(transaction=True)
def test_a_price_change_reaches_another_process_by_its_next_quote():
    PriceFactory(key="openai/gpt-4o")  # 2.5 per 1K input tokens
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",  # settings_test would use TEST_DATABASE_URL instead
        "DATABASE_URL": child_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        # A TTL far longer than the test: only the revision check can explain a fresh price.
        "CREDITLEDGER_PRICING_CACHE_TTL_S": "3600",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.pricing.quote_worker", "openai/gpt-4o"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:

        def ask() -> dict:
            worker.stdin.write("quote\n")
            worker.stdin.flush()
            return json.loads(worker.stdout.readline())

        assert json.loads(worker.stdout.readline()) == {"ready": True}
        first = ask()
        assert (first["amount"], first["version"]) == ("2.50", 1)
        assert ask()["reloads"] == first["reloads"]  # cached in the other process

        price_create(key="openai/gpt-4o", credit_type=default_credit_type(), per_1k_input_tokens="4")

        after = ask()
        assert (after["amount"], after["version"]) == ("4.00", 2)
        assert after["reloads"] == first["reloads"] + 1
    finally:
        worker.stdin.write("exit\n")
        worker.stdin.flush()
        worker.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_price_changed_while_8_threads_charge_prices_each_charge_by_exactly_one_version():
    credit_type = default_credit_type()
    account = funded_account("100000.00")
    PriceFactory(key="openai/gpt-4o", per_1k_input_tokens=Decimal("2"), per_1k_output_tokens=Decimal("8"))
    usage = Usage(input_tokens=1234, output_tokens=567)
    charges_per_thread = 6
    changed = threading.Event()

    def work(i: int):
        if i == 8:  # the price changer, part-way through the charging
            time.sleep(0.05)
            price_create(
                key="openai/gpt-4o", credit_type=credit_type, per_1k_input_tokens="3", per_1k_output_tokens="9"
            )
            changed.set()
            return None
        entries = []
        for n in range(charges_per_thread):
            if n == charges_per_thread // 2:
                changed.wait(timeout=10)
            quote = price_quote(key="openai/gpt-4o", usage=usage)
            entries.append(charge_create(account=account, credit_type=credit_type, quote=quote, actor=Actor.system()))
        return entries

    results = run_concurrently(work, 9)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors

    versions = {p.pk: p for p in Price.objects.filter(key="openai/gpt-4o")}
    entries = list(LedgerEntry.objects.filter(account=account, kind="charge"))
    assert len(entries) == 8 * charges_per_thread
    for entry in entries:
        version = versions[entry.price_version_id]  # every charge names one version...
        expected = amount_round(amount_exact(UnitPrices.of(version), usage), credit_type.scale)
        assert -entry.amount == expected  # ...and is priced by exactly that version
        assert Decimal(entry.unit_prices["per_1k_input_tokens"]) == version.per_1k_input_tokens
    used = {e.price_version_id for e in entries}
    assert len(used) == 2  # charges after the change (second half of every thread) use the new version
    newest = max(versions.values(), key=lambda p: p.version)
    last_of_each_thread = [r[-1] for r in results if isinstance(r, list)]
    assert all(e.price_version_id == newest.pk for e in last_of_each_thread)
