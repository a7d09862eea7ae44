"""Client processes and the operations they time, three ways each.

Every operation exists as

* `raw`: the same SQL transaction through a bare psycopg connection (lock
  the wallet row, update it, insert the rows, commit): the baseline;
* `service`: the service-layer function (`billing.services`, `refunds.services`);
* `http`: the API endpoint, through gunicorn, with an Idempotency-Key as a
  real client would send.

A pool of forked client processes (forked after Django is set up and the
data seeded) runs one timed phase at a time: every client starts at the same
wall-clock instant, warms up, then records the latency of each operation
and, for raw and service, how long it held the wallet lock (from the lock
being granted to the commit returning).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import random
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from time import perf_counter
from typing import Any

import psycopg

AMOUNT = Decimal("0.01")
AMOUNT_STR = "0.01"
BATCH_SIZE = 100  # charges per call in the batch phase (the endpoint's maximum)


@dataclass
class Target:
    account: Any  # accounts.models.Account
    account_pk: int
    wallet_pk: int
    public_id: str


# Filled in by the parent before the pool is forked; the children inherit them.
STATE: dict[str, Any] = {
    "targets": {},  # scenario -> [Target]
    "charges": {},  # scenario -> {account_pk: [LedgerEntry]} for refunds
    "credit_type": None,
    "secret": "",
    "port": 0,
    "dsn": "",
}


class Client:
    """One client process's connections and its timing hooks."""

    def __init__(self) -> None:
        self.pg: psycopg.Connection | None = None
        self.locked_at = 0.0
        self.committed_at = 0.0
        self._inserts: dict[str, Any] = {}

    # --- plumbing ---------------------------------------------------------

    def raw(self) -> psycopg.Connection:
        if self.pg is None or self.pg.closed:
            self.pg = psycopg.connect(STATE["dsn"])
        return self.pg

    def insert(self, name: str):
        if name not in self._inserts:
            from bench.rows import RowInsert
            from billing.models import Hold, LedgerEntry
            from refunds.models import RefundLog

            models = {"ledger": LedgerEntry, "hold": Hold, "refundlog": RefundLog}
            dynamic = {
                "ledger": [
                    *("public_id", "wallet", "account", "credit_type", "kind", "amount", "balance_after"),
                    "related_entry",
                ],
                "hold": ["public_id", "wallet", "account", "credit_type", "amount", "expires_at"],
                "refundlog": ["public_id", "account", "credit_type", "amount", "reason", "charge", "refund_entry"],
            }
            self._inserts[name] = RowInsert(models[name], dynamic[name])
        return self._inserts[name]

    def http(self, method: str, path: str, body: dict) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", STATE["port"], timeout=60)
        try:
            conn.request(
                method,
                path,
                body=json.dumps(body),
                headers={
                    "Authorization": f"Bearer {STATE['secret']}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": uuid.uuid4().hex,
                },
            )
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} -> {response.status}: {payload[:200]!r}")
        return json.loads(payload)

    def lock_wallet(self, cur, target: Target) -> tuple[int, Decimal, Decimal]:
        cur.execute(
            "SELECT id, balance, held FROM billing_wallet WHERE account_id = %s AND credit_type_id = %s "
            "FOR NO KEY UPDATE",
            (target.account_pk, STATE["credit_type"].pk),
        )
        row = cur.fetchone()
        self.locked_at = perf_counter()
        return row

    def ledger_row(self, cur, target: Target, wallet_id: int, kind: str, amount: Decimal, balance_after: Decimal, **kw):
        from billing.models import ledger_entry_id

        insert = self.insert("ledger")
        cur.execute(
            insert.sql,
            insert.params(
                public_id=ledger_entry_id(),
                wallet=wallet_id,
                account=target.account_pk,
                credit_type=STATE["credit_type"].pk,
                kind=kind,
                amount=amount,
                balance_after=balance_after,
                related_entry=kw.get("related_entry"),
            ),
        )
        return cur.fetchone()[0]

    # --- charge -----------------------------------------------------------

    def charge_raw(self, target: Target, rng: random.Random) -> float:
        conn = self.raw()
        with conn.cursor() as cur:
            wallet_id, balance, held = self.lock_wallet(cur, target)
            if balance - held < AMOUNT:
                raise RuntimeError("insufficient credits")
            new_balance = balance - AMOUNT
            cur.execute(
                "UPDATE billing_wallet SET balance = %s, updated_at = now() WHERE id = %s", (new_balance, wallet_id)
            )
            self.ledger_row(cur, target, wallet_id, "charge", -AMOUNT, new_balance)
        conn.commit()
        return perf_counter() - self.locked_at

    def charge_service(self, target: Target, rng: random.Random) -> float:
        from billing import services

        services.charge_create(
            account=target.account, credit_type=STATE["credit_type"], amount=AMOUNT, actor=services.Actor.system()
        )
        return self.committed_at - self.locked_at

    def charge_http(self, target: Target, rng: random.Random) -> None:
        self.http("POST", "/api/v1/charges", {"account": target.public_id, "amount": AMOUNT_STR})

    # --- batch: BATCH_SIZE charges per call, each on a random wallet -----------
    #
    # Its raw baseline is the per-row charge (`charge_raw`): the phase asks how
    # many charges a second the batch endpoint carries against charging row by
    # row. `run` counts BATCH_SIZE charges per service or HTTP call.

    def batch_raw(self, target: Target, rng: random.Random) -> float:
        return self.charge_raw(target, rng)

    def _batch_targets(self, target: Target, rng: random.Random) -> list[Target]:
        targets = STATE["targets"]["spread"] if len(STATE["targets"]["spread"]) > 1 else [target]
        return [target] + [targets[rng.randrange(len(targets))] for _ in range(BATCH_SIZE - 1)]

    def batch_service(self, target: Target, rng: random.Random) -> None:
        from django.db import transaction

        from billing import services
        from config.atomic import services_join

        charges = [
            services.BatchCharge(account=t.account, credit_type=STATE["credit_type"], amount=AMOUNT)
            for t in self._batch_targets(target, rng)
        ]
        # As the API runs it: one transaction, the wallets' postings joining it.
        with transaction.atomic(), services_join():
            outcomes = services.charges_batch_apply(charges=charges, actor=services.Actor.system())
        declined = [o for o in outcomes if isinstance(o, Exception)]
        if declined:
            raise RuntimeError(f"{len(declined)} items declined: {declined[0]}")

    def batch_http(self, target: Target, rng: random.Random) -> None:
        items = [
            {"account": t.public_id, "amount": AMOUNT_STR, "idempotency_key": uuid.uuid4().hex}
            for t in self._batch_targets(target, rng)
        ]
        body = self.http("POST", "/api/v1/charges/batch", {"items": items})
        failed = [item for item in body["data"] if item["status"] >= 300]
        if failed:
            raise RuntimeError(f"{len(failed)} items failed: {failed[0]['body']}")

    def batch_floor(self, target: Target, rng: random.Random) -> float:
        """The least any batch endpoint must do for 100 charges, in bulk SQL on bare psycopg: its ceiling here.

        What each item needs stored, with nothing per item but ids, the
        running balance and the entry's hash computed in Python: the items'
        idempotency records with their answers (one INSERT), the wallets
        locked in id order (one SELECT ... FOR NO KEY UPDATE), their balances
        and chain heads (one UPDATE), the entries with their `charge.created`
        event type (one INSERT: an entry's event is its column), COMMIT. No validation, pricing,
        rendering or HTTP: an endpoint cannot beat this on the same machine,
        so batch floor / raw per-row bounds what the batch target can reach.
        Its entries are hashed with a key of its own (the cost, not the
        chain): the bench database's chains do not verify after it.
        """
        import hashlib
        import hmac

        from billing.models import ledger_entry_id

        targets = self._batch_targets(target, rng)
        statements = self._floor_statements()
        conn = self.raw()
        with conn.cursor() as cur:
            cur.execute(
                statements["claims"],
                [*statements["claims_params"], [uuid.uuid4().hex for _ in targets], [t.account_pk for t in targets]],
                prepare=True,
            )
            wallet_ids = sorted({t.wallet_pk for t in targets})
            cur.execute(
                "SELECT id, balance, chain_head FROM billing_wallet WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                (wallet_ids,),
                prepare=True,
            )
            self.locked_at = perf_counter()
            wallets = {wallet_id: [balance, head] for wallet_id, balance, head in cur.fetchall()}
            entry_ids, balances_after, hashes = [], [], []
            for t in targets:
                wallet = wallets[t.wallet_pk]
                wallet[0] -= AMOUNT
                entry_id = ledger_entry_id()
                message = f"{entry_id}|{t.account_pk}|charge|{-AMOUNT}|{wallet[0]}|{wallet[1]}".encode()
                wallet[1] = hmac.new(b"bench-floor-key", message, hashlib.sha256).hexdigest()
                entry_ids.append(entry_id)
                balances_after.append(wallet[0])
                hashes.append(wallet[1])
            cur.execute(
                "UPDATE billing_wallet w SET balance = u.balance, chain_head = u.head, updated_at = now() "
                "FROM unnest(%s::bigint[], %s::numeric[], %s::text[]) AS u(id, balance, head) WHERE w.id = u.id",
                (list(wallets), [w[0] for w in wallets.values()], [w[1] for w in wallets.values()]),
                prepare=True,
            )
            cur.execute(
                statements["entries"],
                [
                    *statements["entries_params"],
                    entry_ids,
                    [t.wallet_pk for t in targets],
                    [t.account_pk for t in targets],
                    balances_after,
                    hashes,
                ],
                prepare=True,
            )
        conn.commit()
        return perf_counter() - self.locked_at

    def _floor_statements(self) -> dict:
        if "floor" not in self._inserts:
            from bench.rows import insert_select
            from billing.models import IdempotencyRecord, LedgerEntry

            credit_type, api_key = STATE["credit_type"].pk, STATE["api_key_pk"]
            answer = json.dumps({"object": "ledger_entry", "amount": "-" + AMOUNT_STR, "pad": "x" * 400}).encode()
            claims, claims_params = insert_select(
                IdempotencyRecord,
                {
                    "key": "u.key",
                    "account": "u.account",
                    "api_key": ("%s", [api_key]),
                    "endpoint": ("%s", ["POST /api/v1/charges/batch#item"]),
                    "request_hash": "md5(u.key)",
                    "response_status": ("%s", [201]),
                    "response_raw": ("%s", [answer]),
                },
                "unnest(%s::text[], %s::bigint[]) AS u(key, account)",
            )
            entries, entries_params = insert_select(
                LedgerEntry,
                {
                    "public_id": "u.public_id",
                    "wallet": "u.wallet",
                    "account": "u.account",
                    "credit_type": ("%s", [credit_type]),
                    "kind": ("%s", ["charge"]),
                    "amount": ("%s", [-AMOUNT]),
                    "balance_after": "u.balance_after",
                    "entry_hash": "u.entry_hash",
                    "key_id": ("%s", ["bench"]),
                    "event_type": ("%s", ["charge.created"]),
                    "created_at": "now()",
                },
                "unnest(%s::text[], %s::bigint[], %s::bigint[], %s::numeric[], %s::text[]) "
                "AS u(public_id, wallet, account, balance_after, entry_hash)",
            )
            self._inserts["floor"] = {
                "claims": claims,
                "claims_params": claims_params,
                "entries": entries,
                "entries_params": entries_params,
            }
        return self._inserts["floor"]

    # --- hold + capture ---------------------------------------------------

    def hold_capture_raw(self, target: Target, rng: random.Random) -> float:
        from billing.models import hold_public_id

        conn = self.raw()
        insert = self.insert("hold")
        with conn.cursor() as cur:
            wallet_id, balance, held = self.lock_wallet(cur, target)
            if balance - held < AMOUNT:
                raise RuntimeError("insufficient credits")
            from django.utils import timezone

            cur.execute(
                insert.sql,
                insert.params(
                    public_id=hold_public_id(),
                    wallet=wallet_id,
                    account=target.account_pk,
                    credit_type=STATE["credit_type"].pk,
                    amount=AMOUNT,
                    expires_at=timezone.now() + timedelta(hours=1),
                ),
            )
            hold_id = cur.fetchone()[0]
            cur.execute(
                "UPDATE billing_wallet SET held = held + %s, updated_at = now() WHERE id = %s", (AMOUNT, wallet_id)
            )
        conn.commit()
        with conn.cursor() as cur:
            wallet_id, balance, held = self.lock_wallet(cur, target)
            cur.execute("SELECT status, amount FROM billing_hold WHERE id = %s", (hold_id,))
            status, amount = cur.fetchone()
            if status != "pending":
                raise RuntimeError("hold not pending")
            new_balance = balance - AMOUNT
            cur.execute(
                "UPDATE billing_wallet SET balance = %s, held = held - %s, updated_at = now() WHERE id = %s",
                (new_balance, amount, wallet_id),
            )
            entry_id = self.ledger_row(cur, target, wallet_id, "charge", -AMOUNT, new_balance)
            cur.execute(
                "UPDATE billing_hold SET status = 'captured', captured_amount = %s, requested_amount = %s, "
                "capture_entry_id = %s, resolved_at = now() WHERE id = %s AND status = 'pending'",
                (AMOUNT, AMOUNT, entry_id, hold_id),
            )
            if cur.rowcount != 1:
                raise RuntimeError("hold claimed twice")
        conn.commit()
        return perf_counter() - self.locked_at

    def hold_capture_service(self, target: Target, rng: random.Random) -> float:
        from billing import services

        actor = services.Actor.system()
        hold = services.hold_create(
            account=target.account, credit_type=STATE["credit_type"], amount=AMOUNT, actor=actor
        )
        services.hold_capture(hold=hold, amount=AMOUNT, actor=actor)
        return self.committed_at - self.locked_at

    def hold_capture_http(self, target: Target, rng: random.Random) -> None:
        hold = self.http("POST", "/api/v1/holds", {"account": target.public_id, "amount": AMOUNT_STR})
        self.http("POST", f"/api/v1/holds/{hold['id']}/capture", {"amount": AMOUNT_STR})

    # --- refund -----------------------------------------------------------

    def _charge_for(self, target: Target, rng: random.Random, scenario: str):
        return rng.choice(STATE["charges"][scenario][target.account_pk])

    def refund_raw(self, target: Target, rng: random.Random, scenario: str) -> float:
        from refunds.models import refund_public_id

        charge = self._charge_for(target, rng, scenario)
        conn = self.raw()
        with conn.cursor() as cur:
            wallet_id, balance, _ = self.lock_wallet(cur, target)
            cur.execute("SELECT amount, kind FROM billing_ledgerentry WHERE id = %s", (charge.pk,))
            charged, kind = cur.fetchone()
            cur.execute(
                "SELECT coalesce(sum(amount), 0) FROM billing_ledgerentry "
                "WHERE related_entry_id = %s AND kind = 'refund'",
                (charge.pk,),
            )
            if kind != "charge" or -charged - cur.fetchone()[0] < AMOUNT:
                raise RuntimeError("refund exceeds charge")
            new_balance = balance + AMOUNT
            cur.execute(
                "UPDATE billing_wallet SET balance = %s, updated_at = now() WHERE id = %s", (new_balance, wallet_id)
            )
            entry_id = self.ledger_row(cur, target, wallet_id, "refund", AMOUNT, new_balance, related_entry=charge.pk)
            insert = self.insert("refundlog")
            cur.execute(
                insert.sql,
                insert.params(
                    public_id=refund_public_id(),
                    account=target.account_pk,
                    credit_type=STATE["credit_type"].pk,
                    amount=AMOUNT,
                    reason="api_error",
                    charge=charge.pk,
                    refund_entry=entry_id,
                ),
            )
        conn.commit()
        return perf_counter() - self.locked_at

    def refund_service(self, target: Target, rng: random.Random, scenario: str) -> float:
        from billing.services import Actor
        from refunds import services

        charge = self._charge_for(target, rng, scenario)
        services.refund_issue(charge=charge, amount=AMOUNT, reason="api_error", actor=Actor.system())
        return self.committed_at - self.locked_at

    def refund_http(self, target: Target, rng: random.Random, scenario: str) -> None:
        charge = self._charge_for(target, rng, scenario)
        self.http("POST", f"/api/v1/charges/{charge.public_id}/refunds", {"amount": AMOUNT_STR, "reason": "api_error"})

    # --- one timed phase --------------------------------------------------

    def run(self, task: dict) -> dict:
        fn = getattr(self, f"{task['op']}_{task['mode']}")
        targets = STATE["targets"][task["scenario"]]
        extra = (task["scenario"],) if task["op"] == "refund" else ()
        rng = random.Random(task["seed"])
        units = BATCH_SIZE if task["op"] == "batch" and task["mode"] != "raw" else 1
        latencies: list[float] = []
        lock_holds: list[float] = []
        errors: list[str] = []
        record_from = task["start_at"] + task["warmup"]
        end_at = record_from + task["duration"]
        while time.time() < task["start_at"]:
            time.sleep(0.0005)
        while True:
            started_wall = time.time()
            if started_wall >= end_at:
                break
            target = targets[rng.randrange(len(targets))]
            t0 = perf_counter()
            try:
                held = fn(target, rng, *extra)
            except Exception as exc:  # count it and go on: a benchmark reports errors, it does not stop
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                self._recover()
                continue
            if started_wall >= record_from:
                latencies.append(perf_counter() - t0)
                if held is not None:
                    lock_holds.append(held)
        return {"latencies": latencies, "lock_holds": lock_holds, "errors": errors, "units": units * len(latencies)}

    def _recover(self) -> None:
        if self.pg is not None:
            try:
                self.pg.rollback()
            except Exception:
                self.pg.close()
                self.pg = None


def _patch_lock_timer(client: Client) -> None:
    """Record when each service call is granted its wallet lock and when it commits.

    The wallet-locking statements of the service layer are wrapped (the plain
    lock, the debit lock that also reads the daily limit, and a batch's lock
    of all its wallets; a batch reports no lock hold). The commit time
    comes from an on-commit callback registered as the lock is taken, so it
    runs first after COMMIT returns, before the service's own after-commit
    work (cache invalidation, metrics), which holds no lock.
    """
    from django.db import transaction

    from billing import statements

    def committed() -> None:
        client.committed_at = perf_counter()

    def timed(original):
        def locked(**kwargs):
            result = original(**kwargs)
            client.locked_at = perf_counter()
            transaction.on_commit(committed)
            return result

        return locked

    statements.wallet_lock = timed(statements.wallet_lock)
    statements.wallet_lock_for_debit = timed(statements.wallet_lock_for_debit)
    statements.wallets_lock_for_debit = timed(statements.wallets_lock_for_debit)


def _child(pipe) -> None:
    from bench.unsigned import patch

    patch()  # --unsigned: the baseline without the hash chain
    client = Client()
    _patch_lock_timer(client)
    while True:
        task = pipe.recv()
        if task is None:
            break
        try:
            pipe.send(client.run(task))
        except Exception:
            pipe.send({"latencies": [], "lock_holds": [], "errors": [traceback.format_exc()]})


class Pool:
    """`size` forked client processes; `run()` drives the first `clients` of them through one phase."""

    def __init__(self, size: int) -> None:
        from django.db import connections

        connections.close_all()  # each child opens its own
        context = mp.get_context("fork")
        self.pipes = []
        self.processes = []
        for _ in range(size):
            parent, child = context.Pipe()
            process = context.Process(target=_child, args=(child,), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def run(self, *, op: str, mode: str, scenario: str, clients: int, duration: float, warmup: float) -> list[dict]:
        start_at = time.time() + 0.3
        for index in range(clients):
            self.pipes[index].send(
                {
                    "op": op,
                    "mode": mode,
                    "scenario": scenario,
                    "duration": duration,
                    "warmup": warmup,
                    "start_at": start_at,
                    "seed": hash((op, mode, scenario, clients, index)) & 0xFFFFFFFF,
                }
            )
        return [self.pipes[index].recv() for index in range(clients)]

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for process in self.processes:
            process.join(5)
