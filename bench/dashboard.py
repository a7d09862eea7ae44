"""The admin index's dashboard at 1 million ledger rows spread over 30 days.

A database of its own: 1,000 accounts with one wallet each; per wallet a
grant a day, charges over eight routes at random times in the window, a
refund for one charge in twenty (through the refund trigger, like any
refund) and a few expiries, seeded by `INSERT ... SELECT generate_series`;
500 pending holds; one reconciliation run. Then, each in a fresh process:

* the dashboard read live, before any rollup (what `console` avoids);
* the first rollup refresh (the whole window) and a second one (the open
  day only: the every-minute cost, off the charge path);
* `GET /admin/` with the dashboard, as a logged-in superuser through
  Django's test client, after 100 more entries (a live tail after the
  rollup's cut), then after 1,000 (each on another wallet: the worst case):
  p50 and p99, beside the same index without the dashboard (the floor).
"""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg

from bench import env

DASHBOARD_DB = f"{env.OPS_DB}_dashboard"
WALLETS = 1000
ROUTES = ["/api/generate", "/api/chat", "/api/transcribe", "/api/export", "/api/embed", "/api/image", "/api/rank", ""]
WINDOW_S = 29 * 86400  # timestamps inside the 30-day window
# Entries after the rollup's cut, read live by every view. The seeded rate is
# about 23 entries a minute, so 100 is beat four minutes behind; 1,000, each on
# a different wallet, is the worst case reported beside it.
TAIL = 100
WORST_TAIL = 1000


def _probe(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.probe", *args],
        cwd=env.ROOT,
        env=env.child_env(DASHBOARD_DB),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _spread(count: int, start: int = 1) -> str:
    """`count` rows g = start.., each on wallet number g modulo WALLETS (wallet ids are consecutive here)."""
    return (
        f"generate_series({start}, {start + count - 1}) AS g "
        f"JOIN billing_wallet w ON w.id = (SELECT min(id) FROM billing_wallet) + g %% {WALLETS}"
    )


def _routes_sql(expression: str) -> str:
    return "(ARRAY[" + ", ".join(f"'{r}'" for r in ROUTES) + f"])[1 + ({expression}) %% {len(ROUTES)}]"


def _seed(conn: psycopg.Connection, credit_type_id: int, rows: int) -> None:
    from accounts.models import Account
    from bench.rows import insert_select
    from billing.models import Hold, LedgerEntry, ReconciliationRun, Wallet

    def run(model, expressions, source):
        sql, params = insert_select(model, expressions, source)
        conn.execute(sql, params)

    run(
        Account,
        {
            "public_id": "'acct_dash' || lpad(g::text, 12, '0')",
            "external_id": "'dash-' || g",
            "name": "'Dashboard ' || g",
        },
        f"generate_series(1, {WALLETS}) AS g",
    )
    run(Wallet, {"account": "a.id", "credit_type": ("%s", [credit_type_id])}, "accounts_account a")
    days = 30
    refunds = rows // 21
    expiries = rows // 250
    charges = rows - WALLETS * days - refunds - expiries
    entry = {
        "wallet": "w.id",
        "account": "w.account_id",
        "credit_type": "w.credit_type_id",
        "balance_after": "1000000",
    }
    # A grant a day on every wallet.
    run(
        LedgerEntry,
        {
            **entry,
            "public_id": "'txn_g' || substr(md5(w.id::text || '-' || d::text), 1, 23)",
            "kind": "'grant'",
            "amount": "1000",
            "created_at": "now() - d * interval '1 day'",
        },
        f"billing_wallet w CROSS JOIN generate_series(0, {days - 1}) AS d",
    )
    # Charges at spread times over the window, on eight routes.
    run(
        LedgerEntry,
        {
            **entry,
            "public_id": "'txn_c' || substr(md5(g::text), 1, 23)",
            "kind": "'charge'",
            "amount": "-(1 + (g %% 997) / 100.0)",
            "route": _routes_sql("g / 7"),
            "created_at": f"now() - ((g::bigint * 7919) %% {WINDOW_S}) * interval '1 second'",
        },
        _spread(charges),
    )
    # One refund in twenty charges, half of it, a minute later (the refund trigger checks each).
    run(
        LedgerEntry,
        {
            **entry,
            "wallet": "c.wallet_id",
            "account": "c.account_id",
            "credit_type": "c.credit_type_id",
            "public_id": "'txn_r' || substr(md5(c.id::text), 1, 23)",
            "kind": "'refund'",
            "amount": "-c.amount / 2",
            "route": "c.route",
            "related_entry": "c.id",
            "created_at": "least(c.created_at + interval '1 minute', now())",
        },
        f"(SELECT * FROM billing_ledgerentry WHERE kind = 'charge' ORDER BY id LIMIT {refunds}) c",
    )
    run(
        LedgerEntry,
        {
            **entry,
            "public_id": "'txn_e' || substr(md5(g::text), 1, 23)",
            "kind": "'expiry'",
            "amount": "-5",
            "created_at": f"now() - ((g::bigint * 104729) %% {WINDOW_S}) * interval '1 second'",
        },
        _spread(expiries),
    )
    conn.execute("UPDATE billing_wallet SET balance = 1000000, held = 10")
    run(
        Hold,
        {
            "public_id": "'hold_' || substr(md5(w.id::text), 1, 24)",
            "wallet": "w.id",
            "account": "w.account_id",
            "credit_type": "w.credit_type_id",
            "amount": "10",
            "expires_at": "now() + interval '1 hour'",
        },
        "billing_wallet w",
    )
    run(ReconciliationRun, {"status": "'clean'", "wallets_checked": str(WALLETS)}, "generate_series(1, 1)")
    conn.commit()


def _tail(conn: psycopg.Connection, entries: int, start: int = 1) -> None:
    """`entries` charges made after the rollup's cut: the dashboard aggregates them live."""
    from bench.rows import insert_select
    from billing.models import LedgerEntry

    sql, params = insert_select(
        LedgerEntry,
        {
            "public_id": "'txn_t' || substr(md5(g::text), 1, 23)",
            "wallet": "w.id",
            "account": "w.account_id",
            "credit_type": "w.credit_type_id",
            "kind": "'charge'",
            "amount": "-2",
            "balance_after": "1000000",
            "route": _routes_sql("g"),
        },
        _spread(entries, start),
    )
    conn.execute(sql, params)
    conn.commit()


def dashboard_benchmark(*, rows: int = 1_000_000, requests: int = 40, log=print) -> dict:
    env.database_recreate(DASHBOARD_DB)
    env.database_migrate(DASHBOARD_DB)
    with psycopg.connect(env.db_url(DASHBOARD_DB)) as conn:
        # Created by migration in every database.
        credit_type_id = conn.execute("SELECT id FROM pricing_credittype WHERE code = 'credits'").fetchone()[0]
        log(f"  seeding {rows:,} ledger rows over 30 days")
        _seed(conn, credit_type_id, rows)
        actual = conn.execute("SELECT count(*) FROM billing_ledgerentry").fetchone()[0]
    with psycopg.connect(env.db_url(DASHBOARD_DB), autocommit=True) as vacuum:
        vacuum.execute("VACUUM ANALYZE")
    log("  the dashboard live, before any rollup")
    live = _probe("dashboard", "3")
    log("  rollup refresh: whole window, then the open day")
    first = _probe("rollup")
    again = _probe("rollup")
    with psycopg.connect(env.db_url(DASHBOARD_DB)) as conn:
        _tail(conn, TAIL)
    log(f"  GET /admin/ x {requests}, {TAIL} entries after the cut")
    served = _probe("dashboard", str(requests))
    with psycopg.connect(env.db_url(DASHBOARD_DB)) as conn:
        _tail(conn, WORST_TAIL - TAIL, start=TAIL + 1)
    log(f"  GET /admin/ x {requests}, {WORST_TAIL} entries after the cut")
    worst = _probe("dashboard", str(requests))
    return {
        "ledger_rows": actual,
        "live_without_rollup": live,
        "rollup_first_seconds": first["seconds"],
        "rollup_open_day_seconds": again["seconds"],
        "tail_entries": TAIL,
        "dashboard": served,
        "worst_tail_entries": WORST_TAIL,
        "dashboard_worst_tail": worst,
    }


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    env.django_setup(DASHBOARD_DB)
    print(json.dumps(dashboard_benchmark(rows=args.rows, requests=args.requests), indent=2))


if __name__ == "__main__":
    main()
