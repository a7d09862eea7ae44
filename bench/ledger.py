"""Balance reads and reconciliation at 10 thousand and 1 million ledger rows.

A database of its own: 1,000 accounts with one wallet each, filled with
grant entries by `INSERT ... SELECT generate_series` (the append-only
trigger allows inserts), and each wallet's stored balance set to its ledger
sum, so reconciliation finds the ledger clean. At each size:

* balance read latency through the selector (a fresh process);
* `reconciliation_run()` time and peak RSS (a fresh process each);
* a bare `SELECT wallet_id, sum(amount) FROM billing_ledgerentry GROUP BY
  wallet_id` over the same rows, the floor reconciliation is held against.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg

from bench import env

WALLETS = 1000


def _probe(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.probe", *args],
        cwd=env.ROOT,
        env=env.child_env(env.LEDGER_DB),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _seed_accounts(conn: psycopg.Connection, credit_type_id: int) -> None:
    from accounts.models import Account
    from bench.rows import insert_select
    from billing.models import Wallet

    sql, params = insert_select(
        Account,
        {
            "public_id": "'acct_bench' || lpad(g::text, 12, '0')",
            "external_id": "'bench-' || g",
            "name": "'Bench ' || g",
        },
        f"generate_series(1, {WALLETS}) AS g",
    )
    conn.execute(sql, params)
    sql, params = insert_select(
        Wallet,
        {"account": "a.id", "credit_type": ("%s", [credit_type_id])},
        "accounts_account a WHERE a.external_id LIKE 'bench-%%'",
    )
    conn.execute(sql, params)


def _grow_to(conn: psycopg.Connection, per_wallet_from: int, per_wallet_to: int) -> None:
    """Add grant entries numbered per_wallet_from+1 .. per_wallet_to to every bench wallet."""
    from bench.rows import insert_select
    from billing.models import LedgerEntry

    sql, params = insert_select(
        LedgerEntry,
        {
            "public_id": "'txn_' || substr(md5(w.id::text || '-' || g::text), 1, 24)",
            "wallet": "w.id",
            "account": "w.account_id",
            "credit_type": "w.credit_type_id",
            "kind": "'grant'",
            "amount": "1",
            "balance_after": "g",
        },
        f"billing_wallet w JOIN accounts_account a ON a.id = w.account_id "
        f"CROSS JOIN generate_series({per_wallet_from + 1}, {per_wallet_to}) AS g "
        f"WHERE a.external_id LIKE 'bench-%%'",
    )
    conn.execute(sql, params)
    conn.execute(
        "UPDATE billing_wallet w SET balance = %s FROM accounts_account a "
        "WHERE a.id = w.account_id AND a.external_id LIKE 'bench-%%'",
        (per_wallet_to,),
    )
    _sign(conn)
    conn.commit()
    with psycopg.connect(env.db_url(env.LEDGER_DB), autocommit=True) as vacuum:
        vacuum.execute("VACUUM ANALYZE")


def _sign(conn: psycopg.Connection) -> None:
    """Sign the entries just seeded as the ledger core would (each wallet's chain in id order), so reconcile is clean.

    The INSERT ... SELECT cannot chain HMACs; this pass reads the unsigned
    entries in wallet and id order, signs them with billing.chain and writes
    the hashes and each wallet's head back (the append-only trigger off for
    this transaction's UPDATE only).
    """
    from billing import chain

    key_id = chain.current_key_id()
    heads = dict(conn.execute("SELECT id, chain_head FROM billing_wallet").fetchall())
    conn.execute(
        "SET CONSTRAINTS ALL IMMEDIATE"
    )  # the seeding INSERT's deferred checks: ALTER TABLE needs none pending
    conn.execute("ALTER TABLE billing_ledgerentry DISABLE TRIGGER billing_ledgerentry_append_only")
    with conn.cursor(name="unsigned") as reader, conn.cursor() as writer:
        reader.execute(
            "SELECT id, wallet_id, public_id, account_id, credit_type_id, kind, amount, balance_after, "
            "related_entry_id, actor_api_key_id, actor_user_id, created_at FROM billing_ledgerentry "
            "WHERE entry_hash = '' ORDER BY wallet_id, id"
        )
        while rows := reader.fetchmany(20_000):
            ids, hashes = [], []
            for entry_id, wallet_id, public_id, account_id, credit_type_id, kind, amount, after, *rest in rows:
                related, api_key, user, created_at = rest
                heads[wallet_id] = chain.sign(
                    chain.entry_message(
                        key_id=key_id,
                        public_id=public_id,
                        wallet_id=wallet_id,
                        account_id=account_id,
                        credit_type_id=credit_type_id,
                        kind=kind,
                        amount=amount,
                        balance_after=after,
                        related_entry_id=related,
                        actor_api_key_id=api_key,
                        actor_user_id=user,
                        created_at=created_at,
                        prev_hash=heads[wallet_id],
                    ),
                    key_id,
                )
                ids.append(entry_id)
                hashes.append(heads[wallet_id])
            writer.execute(
                "UPDATE billing_ledgerentry e SET key_id = %s, entry_hash = u.hash "
                "FROM unnest(%s::bigint[], %s::text[]) AS u(id, hash) WHERE e.id = u.id",
                (key_id, ids, hashes),
            )
    conn.execute(
        "UPDATE billing_wallet w SET chain_head = u.head FROM unnest(%s::bigint[], %s::text[]) AS u(id, head) "
        "WHERE w.id = u.id",
        (list(heads), list(heads.values())),
    )
    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses to run with trigger events pending
    conn.execute("ALTER TABLE billing_ledgerentry ENABLE TRIGGER billing_ledgerentry_append_only")
    conn.execute("SET CONSTRAINTS ALL DEFERRED")


def _bare_aggregate(conn: psycopg.Connection) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute("SELECT wallet_id, sum(amount) FROM billing_ledgerentry GROUP BY wallet_id")
            cur.fetchall()
        best = min(best, time.perf_counter() - started)
    conn.rollback()
    return best


def _measure(conn: psycopg.Connection, rows: int, balance_reads: int) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing_ledgerentry")
        actual = cur.fetchone()[0]
    conn.rollback()
    balance = _probe("balance", str(balance_reads))
    reconcile = min((_probe("reconcile") for _ in range(2)), key=lambda r: r["seconds"])
    bare = _bare_aggregate(conn)
    return {
        "ledger_rows": actual,
        "balance_read": balance,
        "reconcile_seconds": reconcile["seconds"],
        "reconcile_rows_per_s": actual / reconcile["seconds"],
        "reconcile_status": reconcile.get("status"),
        "reconcile_peak_rss_mb": reconcile["peak_rss_mb"],
        "bare_aggregate_seconds": bare,
        "bare_aggregate_rows_per_s": actual / bare,
        "reconcile_vs_bare": reconcile["seconds"] / bare,
    }


def ledger_benchmark(
    *, big_rows: int = 1_000_000, small_rows: int = 10_000, balance_reads: int = 2000, log=print
) -> dict:
    from pricing.models import CreditType

    env.database_recreate(env.LEDGER_DB)
    env.database_migrate(env.LEDGER_DB)
    credit_type_id = CreditType.objects.get(code="credits").pk  # created by migration in every database
    results: dict = {"idle_process": _probe("idle")}
    with psycopg.connect(env.db_url(env.LEDGER_DB)) as conn:
        _seed_accounts(conn, credit_type_id)
        conn.commit()
        small = small_rows // WALLETS
        big = big_rows // WALLETS
        log(f"  seeding {small * WALLETS:,} ledger rows")
        _grow_to(conn, 0, small)
        results["small"] = _measure(conn, small * WALLETS, balance_reads)
        log(f"  seeding up to {big * WALLETS:,} ledger rows")
        started = time.perf_counter()
        _grow_to(conn, small, big)
        results["seed_seconds"] = time.perf_counter() - started
        results["big"] = _measure(conn, big * WALLETS, balance_reads)
    return results
