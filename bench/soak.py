"""The soak: many clients mixing every money-moving call on a few shared accounts.

32 client threads (HTTP through gunicorn; the threads wait on sockets, so the
GIL does not matter) pick at random among grant, charge, hold, capture,
release and refund on 8 accounts they all share, for 5 minutes. Every
request carries an Idempotency-Key and is retried with the same key on a
connection error or a 5xx, as a real client would.

Afterwards it checks, and the run fails unless:

* PostgreSQL counted zero deadlocks in the benchmark database
  (`pg_stat_database.deadlocks`) and no response was a 5xx after retries;
* zero requests were lost: every request got a definitive answer, and the
  set of ledger entries the database holds for the soak is exactly the set
  the clients were told about (nothing missing, nothing extra);
* each wallet's balance equals the start plus every acknowledged movement,
  equals its ledger sum, and nothing is still held once the clients have
  released their holds.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from decimal import Decimal

import psycopg

from bench import env

ACCOUNTS = 8
START = Decimal("1000.00")
WEIGHTS = {"grant": 8, "charge": 35, "hold": 20, "capture": 15, "release": 7, "refund": 15}
RETRIES = 6


class SoakClient:
    def __init__(self, index: int, shared: dict) -> None:
        self.rng = random.Random(index)
        self.shared = shared
        self.holds: list[tuple[str, str, Decimal]] = []  # (account, hold id, amount)
        self.statuses: Counter[str] = Counter()
        self.lost = 0
        self.entries: set[str] = set()
        self.delta: dict[str, Decimal] = defaultdict(Decimal)

    def call(self, method: str, path: str, body: dict) -> tuple[int, dict] | None:
        key = uuid.uuid4().hex
        for attempt in range(RETRIES):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.shared["port"], timeout=30)
                conn.request(
                    method,
                    path,
                    body=json.dumps(body),
                    headers={
                        "Authorization": f"Bearer {self.shared['secret']}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": key,
                    },
                )
                response = conn.getresponse()
                payload = json.loads(response.read() or b"{}")
                conn.close()
            except (OSError, http.client.HTTPException, json.JSONDecodeError):
                self.statuses["connection_error"] += 1
                time.sleep(0.05 * (attempt + 1))
                continue
            if response.status >= 500:
                self.statuses[f"{response.status} (retried)"] += 1
                time.sleep(0.05 * (attempt + 1))
                continue
            self.statuses[str(response.status)] += 1
            return response.status, payload
        self.lost += 1
        return None

    def step(self) -> None:
        op = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        account = self.rng.choice(self.shared["accounts"])
        amount = Decimal(self.rng.randint(1, 500)) / 100
        if op in ("capture", "release") and not self.holds:
            op = "hold"
        if op == "refund" and not self.shared["charges"]:
            op = "charge"
        if op == "grant":
            result = self.call("POST", "/api/v1/grants", {"account": account, "amount": str(amount)})
            if result and result[0] == 201:
                self.delta[account] += amount
                self.entries.add(result[1]["id"])
        elif op == "charge":
            result = self.call("POST", "/api/v1/charges", {"account": account, "amount": str(amount)})
            if result and result[0] == 201:
                self.delta[account] -= amount
                self.entries.add(result[1]["id"])
                self.shared["charges"].append((account, result[1]["id"]))
        elif op == "hold":
            result = self.call("POST", "/api/v1/holds", {"account": account, "amount": str(amount)})
            if result and result[0] == 201:
                self.holds.append((account, result[1]["id"], amount))
        elif op == "capture":
            account, hold_id, held = self.holds.pop(self.rng.randrange(len(self.holds)))
            capture = (held * Decimal(self.rng.choice(["0", "0.5", "1", "1.5"]))).quantize(Decimal("0.01"))
            result = self.call("POST", f"/api/v1/holds/{hold_id}/capture", {"amount": str(capture)})
            if result and result[0] == 200:
                captured = Decimal(result[1]["captured_amount"])
                self.delta[account] -= captured
                entry = result[1].get("capture_entry")
                if entry:
                    entry_id = entry["id"] if isinstance(entry, dict) else entry
                    self.entries.add(entry_id)
                    self.shared["charges"].append((account, entry_id))
        elif op == "release":
            _, hold_id, _ = self.holds.pop(self.rng.randrange(len(self.holds)))
            self.call("POST", f"/api/v1/holds/{hold_id}/release", {})
        elif op == "refund":
            account, charge_id = self.rng.choice(self.shared["charges"])
            refund = Decimal(self.rng.randint(1, 100)) / 100
            result = self.call(
                "POST", f"/api/v1/charges/{charge_id}/refunds", {"amount": str(refund), "reason": "api_error"}
            )
            if result and result[0] == 201:
                self.delta[account] += refund
                self.entries.add(result[1]["refund_entry"]["id"])

    def finish(self) -> None:
        while self.holds:
            _, hold_id, _ = self.holds.pop()
            self.call("POST", f"/api/v1/holds/{hold_id}/release", {})


def _deadlocks() -> int:
    with psycopg.connect(env.db_url(env.OPS_DB)) as conn:
        return conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = %s", (env.OPS_DB,)).fetchone()[0]


def soak(*, seconds: float, clients: int, log=print) -> dict:
    from django.db.models import Sum

    from accounts.models import Account, ApiKey
    from accounts.services import api_key_create
    from billing.models import LedgerEntry, Wallet
    from billing.services import Actor, grant_create
    from pricing.models import CreditType

    credit_type = CreditType.objects.get(code="credits")
    accounts = [Account.objects.create(external_id=f"soak-{i}") for i in range(ACCOUNTS)]
    for account in accounts:
        grant_create(account=account, credit_type=credit_type, amount=START, actor=Actor.system())
    last_entry = LedgerEntry.objects.order_by("-id").values_list("id", flat=True).first()
    secret = api_key_create(kind=ApiKey.Kind.SERVICE, name="soak").secret
    gunicorn = env.Gunicorn(env.OPS_DB)
    shared = {"port": gunicorn.port, "secret": secret, "accounts": [a.public_id for a in accounts], "charges": []}
    deadlocks_before = _deadlocks()
    workers = [SoakClient(i, shared) for i in range(clients)]
    stop_at = time.monotonic() + seconds

    def loop(client: SoakClient) -> None:
        while time.monotonic() < stop_at:
            client.step()
        client.finish()

    log(f"soak: {clients} clients, {ACCOUNTS} shared accounts, {seconds:g} s")
    threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gunicorn.stop()
    deadlocks = _deadlocks() - deadlocks_before

    statuses: Counter[str] = Counter()
    acknowledged: set[str] = set()
    delta: dict[str, Decimal] = defaultdict(Decimal)
    for w in workers:
        statuses.update(w.statuses)
        acknowledged |= w.entries
        for account, value in w.delta.items():
            delta[account] += value
    lost = sum(w.lost for w in workers)

    recorded = set(
        LedgerEntry.objects.filter(account__in=accounts, id__gt=last_entry or 0).values_list("public_id", flat=True)
    )
    wallets = []
    for account in accounts:
        wallet = Wallet.objects.get(account=account, credit_type=credit_type)
        ledger = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
        wallets.append(
            {
                "account": account.public_id,
                "balance": str(wallet.balance),
                "expected": str(START + delta[account.public_id]),
                "ledger_sum": str(ledger),
                "held": str(wallet.held),
                "ok": wallet.balance == START + delta[account.public_id] == ledger and wallet.held == 0,
            }
        )
    missing = acknowledged - recorded
    extra = recorded - acknowledged
    report = {
        "seconds": seconds,
        "clients": clients,
        "requests": sum(v for k, v in statuses.items() if "retried" not in k and k != "connection_error") + lost,
        "statuses": dict(statuses),
        "deadlocks": deadlocks,
        "lost_requests": lost,
        "acknowledged_entries": len(acknowledged),
        "entries_missing_from_ledger": len(missing),
        "ledger_entries_never_acknowledged": len(extra),
        "wallets": wallets,
    }
    report["ok"] = (
        deadlocks == 0
        and lost == 0
        and not missing
        and not extra
        and all(w["ok"] for w in wallets)
        and not any(k.startswith("5") for k in statuses)
    )
    log(json.dumps({k: v for k, v in report.items() if k != "wallets"}, indent=2))
    log(f"wallets consistent: {all(w['ok'] for w in wallets)}")
    log("SOAK PASSED" if report["ok"] else "SOAK FAILED")
    return report
