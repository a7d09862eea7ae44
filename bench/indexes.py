"""What each ledger INSERT writes besides the row: `python -m bench --indexes`.

A database of its own (`<BENCH_DATABASE>_indexes`, recreated), migrated, with
1,000 accounts and wallets, one service API key, and `--index-rows` ledger
rows shaped like API charges (the key as actor; no task id, related entry,
staff user or price version), inserted by one `INSERT ... SELECT`, then
`VACUUM ANALYZE`. For every index on the ledger: its entries (`reltuples`,
exact after VACUUM) and its size (`pg_relation_size`). Entries per row is
the number of index writes each such INSERT makes. Unlike throughput, these
figures do not depend on what else the machine is doing.
"""

from __future__ import annotations

import time

import psycopg

from bench import env

WALLETS = 1000
INDEXES_DB = f"{env.OPS_DB}_indexes"

_INDEXES_SQL = """
SELECT i.relname, i.reltuples::bigint, pg_relation_size(i.oid), pg_get_indexdef(i.oid)
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
 WHERE x.indrelid = 'billing_ledgerentry'::regclass
 ORDER BY i.relname
"""


def _seed(conn: psycopg.Connection, rows: int) -> float:
    from accounts.models import Account, ApiKey
    from bench.rows import insert_select
    from billing.models import LedgerEntry, Wallet

    credit_types = Wallet._meta.get_field("credit_type").related_model.objects
    credit_type_id = credit_types.get(code="credits").pk  # made by a migration
    for model, expressions, source in (
        (
            Account,
            {"public_id": "'acct_idx' || lpad(g::text, 12, '0')", "external_id": "'idx-' || g"},
            f"generate_series(1, {WALLETS}) AS g",
        ),
        (Wallet, {"account": "a.id", "credit_type": ("%s", [credit_type_id])}, "accounts_account a"),
        (ApiKey, {"kind": "'service'", "prefix": "'benchidx'", "public_id": "'key_benchidx'"}, "(VALUES (1)) AS v"),
    ):
        sql, params = insert_select(model, expressions, source)
        conn.execute(sql, params)
    conn.commit()
    per_wallet = max(1, rows // WALLETS)
    sql, params = insert_select(
        LedgerEntry,
        {
            "public_id": "'txn_' || substr(md5(w.id::text || '-' || g::text), 1, 24)",
            "wallet": "w.id",
            "account": "w.account_id",
            "credit_type": "w.credit_type_id",
            "kind": "'charge'",
            "amount": "-1",
            "balance_after": "g",
            "actor_api_key": "k.id",
            "route": "'/v1/chat/completions'",
            # Distinct times, as real charges have (one now() would deduplicate the index).
            "created_at": f"now() - ((g * {WALLETS} + w.id) * interval '1 millisecond')",
        },
        f"billing_wallet w CROSS JOIN (SELECT id FROM accounts_apikey WHERE prefix = 'benchidx') k "
        f"CROSS JOIN generate_series(1, {per_wallet}) AS g",
    )
    started = time.perf_counter()
    conn.execute(sql, params)
    conn.commit()
    return time.perf_counter() - started


def index_report(*, rows: int = 200_000, log=print) -> dict:
    env.database_recreate(INDEXES_DB)
    env.database_migrate(INDEXES_DB)
    env.django_setup(INDEXES_DB)
    with psycopg.connect(env.db_url(INDEXES_DB)) as conn:
        log(f"inserting {rows:,} ledger rows shaped like API charges")
        seconds = _seed(conn, rows)
        with psycopg.connect(env.db_url(INDEXES_DB), autocommit=True) as vacuum:
            vacuum.execute("VACUUM ANALYZE billing_ledgerentry")
        count = conn.execute("SELECT count(*) FROM billing_ledgerentry").fetchone()[0]
        heap = conn.execute("SELECT pg_relation_size('billing_ledgerentry')").fetchone()[0]
        indexes = [
            {"name": name, "entries": entries, "bytes": size, "definition": definition}
            for name, entries, size, definition in conn.execute(_INDEXES_SQL).fetchall()
        ]
    written = [index for index in indexes if index["entries"]]
    report = {
        "ledger_rows": count,
        "insert_seconds": seconds,
        "heap_bytes": heap,
        "indexes": indexes,
        "index_count": len(indexes),
        "indexes_written_per_insert": sum(index["entries"] for index in indexes) / count,
        "index_bytes": sum(index["bytes"] for index in indexes),
    }
    log("")
    log(f"{'index on billing_ledgerentry':<52}{'entries':>10}{'MB':>9}")
    for index in indexes:
        log(f"{index['name']:<52}{index['entries']:>10,}{index['bytes'] / 2**20:>9.1f}")
    log("")
    log(
        f"{count:,} rows: heap {heap / 2**20:.1f} MB; {len(indexes)} indexes ({len(written)} written by these rows), "
        f"{report['index_bytes'] / 2**20:.1f} MB; {report['indexes_written_per_insert']:.2f} index writes per INSERT; "
        f"INSERT ... SELECT took {seconds:.2f} s."
    )
    return report
