"""`make run`'s embedded SQLite: the money paths work there too.

The rest of the suite runs on PostgreSQL, so this drives a separate process
with DATABASE_URL pointing at a fresh SQLite file: migrate, load_demo, then
fractional charges, a hold and its capture, and a refund through the API.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
from decimal import Decimal
from django.test import Client
from accounts.models import Account
from accounts.services import api_key_create
from billing.models import LedgerEntry, Wallet

secret = api_key_create(kind="service", name="smoke").secret
client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
account = Account.objects.get(external_id="demo-alice")

def post(path, body, key):
    response = client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code in (200, 201), (path, response.status_code, response.content)
    return response.json()

first = post("/api/v1/charges", {"account": account.public_id, "amount": "2.50"}, "c1")
second = post("/api/v1/charges", {"account": account.public_id, "amount": "0.25"}, "c2")
assert second["balance_after"] == "497.25", second
assert post("/api/v1/charges", {"account": account.public_id, "amount": "0.25"}, "c2") == second
priced = post("/api/v1/charges", {"account": account.public_id, "key": "gpt-4o", "usage": {"input_tokens": 1000}}, "c3")
assert priced["amount"] == "-0.25", priced
hold = post("/api/v1/holds", {"account": account.public_id, "amount": "5.00"}, "h1")
captured = post(f"/api/v1/holds/{hold['id']}/capture", {"amount": "1.10"}, "h2")
assert captured["status"] == "captured", captured
post(f"/api/v1/charges/{first['id']}/refunds", {"reason": "timeout"}, "r1")
wallet = Wallet.objects.get(account=account, credit_type__code="credits")
assert wallet.balance == Decimal("498.40") and wallet.held == 0, (wallet.balance, wallet.held)
total = sum(e.amount for e in LedgerEntry.objects.filter(wallet=wallet))
assert total == wallet.balance, (total, wallet.balance)
print("sqlite smoke ok")
"""


def test_money_paths_work_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'smoke.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "REDIS_URL": "redis://127.0.0.1:1/0",  # no Redis: the display cache must not matter
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "--noinput", "-v0"], ["load_demo"], ["shell", "-c", SCRIPT]):
        result = subprocess.run(manage + command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "sqlite smoke ok" in result.stdout
