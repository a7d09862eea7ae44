"""`python -m bench`: set up, measure, print the table, write docs/bench/.

python -m bench              # full run (5 s per phase, 1M ledger rows)
python -m bench --quick      # 2 s per phase: a smoke run
python -m bench --soak       # 5 minutes, 32 clients, mixed operations
python -m bench --only charge --skip-ledger
python -m bench --only batch --skip-ledger --no-write --duration 3   # POST /charges/batch
python -m bench --indexes    # the ledger's indexes: index writes per INSERT, sizes
python -m bench --dashboard-only   # the admin index's dashboard at 1M ledger rows (bench/dashboard.py)
python -m bench --events     # the charge path with events, and with one webhook endpoint (bench/events.py)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from decimal import Decimal

from bench import env

OPS = ["charge", "hold_capture", "refund", "batch"]
MODES = ["raw", "service", "http"]
SCENARIOS = {"hot": "one hot wallet", "spread": "1,000 wallets"}
# The batch phase spreads each batch's items over the 1,000 wallets.
OP_SCENARIOS = {"batch": ["spread"]}
# The batch phase also times its floor: the same 100 charges as bulk SQL on bare psycopg
# (`Client.batch_floor`), what no endpoint can beat on this machine.
OP_MODES = {"batch": ["raw", "floor", "service", "http"]}
# Charges per second through POST /charges/batch over the per-row raw charge of the same run.
BATCH_TARGET = 3.0
# The admin index's dashboard at 1M ledger rows, p50 (ms).
DASHBOARD_P50_MS = 300.0
CLIENTS = [1, 4, 16]
SPREAD_WALLETS = 1000
HTTP_REQUESTS_PER_OP = {"hold_capture": 2}  # a hold, then its capture
OUT = env.ROOT / "docs" / "bench"


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def seed(log=log) -> None:
    """Accounts and wallets for the client processes (in the ops database)."""
    from accounts.models import Account, ApiKey
    from accounts.services import api_key_create
    from bench import clients
    from billing.models import LedgerEntry, Wallet
    from billing.services import Actor, charge_create, grant_create
    from pricing.models import CreditType

    credit_type = CreditType.objects.get(code="credits")
    actor = Actor.system()
    hot = Account.objects.create(external_id="bench-hot", name="Hot account")
    spread = Account.objects.bulk_create(
        [Account(external_id=f"bench-{i}", name=f"Bench {i}") for i in range(SPREAD_WALLETS)]
    )
    log(f"  seeding {SPREAD_WALLETS + 1} funded wallets")
    grant_create(account=hot, credit_type=credit_type, amount=Decimal("1000000000"), actor=actor)
    for account in spread:
        grant_create(account=account, credit_type=credit_type, amount=Decimal("1000000"), actor=actor)
    # Charges for the refund phases to refund 0.01 at a time: many on the hot
    # wallet (so no single charge collects every refund), one per spread wallet.
    hot_charges = [
        charge_create(account=hot, credit_type=credit_type, amount=Decimal("1000"), actor=actor) for _ in range(64)
    ]
    spread_charges = {
        a.pk: [charge_create(account=a, credit_type=credit_type, amount=Decimal("1000"), actor=actor)] for a in spread
    }

    def target(account: Account) -> clients.Target:
        wallet = Wallet.objects.get(account=account, credit_type=credit_type)
        return clients.Target(account=account, account_pk=account.pk, wallet_pk=wallet.pk, public_id=account.public_id)

    wallets = {w.account_id: w.pk for w in Wallet.objects.filter(account__in=spread)}
    clients.STATE.update(
        targets={
            "hot": [target(hot)],
            "spread": [clients.Target(a, a.pk, wallets[a.pk], a.public_id) for a in spread],
        },
        charges={
            "hot": {
                hot.pk: [LedgerEntry.objects.select_related("account", "credit_type").get(pk=c.pk) for c in hot_charges]
            },
            "spread": {
                pk: [LedgerEntry.objects.select_related("account", "credit_type").get(pk=c.pk) for c in charges]
                for pk, charges in spread_charges.items()
            },
        },
        credit_type=credit_type,
        secret=(issued := api_key_create(kind=ApiKey.Kind.SERVICE, name="bench")).secret,
        api_key_pk=issued.api_key.pk,
        dsn=env.db_url(env.OPS_DB),
    )


def summarise(results: list[dict], duration: float) -> dict:
    latencies = [x for r in results for x in r["latencies"]]
    holds = [x for r in results for x in r["lock_holds"]]
    errors = [e for r in results for e in r["errors"]]
    # A batch call counts its charges ("units"); every other call counts one.
    ops = sum(r.get("units", len(r["latencies"])) for r in results)
    return {
        "ops": ops,
        "ops_per_s": ops / duration,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "lock_hold_p50_ms": percentile(holds, 0.50) * 1000 if holds else None,
        "lock_hold_p99_ms": percentile(holds, 0.99) * 1000 if holds else None,
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
    }


def throughput_benchmark(*, ops: list[str], duration: float, warmup: float) -> tuple[list[dict], dict]:
    from bench import clients

    gunicorn = env.Gunicorn(env.OPS_DB)
    clients.STATE["port"] = gunicorn.port
    pool = clients.Pool(max(CLIENTS))
    rows: list[dict] = []
    try:
        for op in ops:
            for scenario in OP_SCENARIOS.get(op, SCENARIOS):
                for count in CLIENTS:
                    baseline = None
                    for mode in OP_MODES.get(op, MODES):
                        result = summarise(
                            pool.run(
                                op=op, mode=mode, scenario=scenario, clients=count, duration=duration, warmup=warmup
                            ),
                            duration,
                        )
                        row = {"op": op, "scenario": scenario, "clients": count, "mode": mode, **result}
                        if mode == "raw":
                            baseline = row
                        row["ratio"] = row["ops_per_s"] / baseline["ops_per_s"] if baseline["ops_per_s"] else None
                        row["p99_vs_raw"] = row["p99_ms"] / baseline["p99_ms"] if baseline["p99_ms"] else None
                        rows.append(row)
                        log(_row_line(row))
                        if result["errors"]:
                            log(f"      errors: {result['error_samples']}")
        floor = http_floor(gunicorn.port, seconds=duration)
        log(f"  http floor: a 404 through gunicorn + Django, 1 client: p50 {floor['p50_ms']:.2f} ms")
    finally:
        pool.close()
        gunicorn.stop()
    return rows, floor


def http_floor(port: int, *, seconds: float) -> dict:
    """What any request costs before it does any work: a 404 through gunicorn, the middleware and URL routing.

    One client, a new connection per request as the HTTP phases make. An
    API call cannot be faster than this, so raw p50 / this p50 is the best
    HTTP / raw ratio this machine allows at one client.
    """
    import http.client

    latencies = []
    end = time.time() + seconds
    while time.time() < end:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/api/v1/bench-floor-not-found")
            conn.getresponse().read()
        finally:
            conn.close()
        latencies.append(time.perf_counter() - started)
    return {
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def _row_line(row: dict) -> str:
    hold = f"  lock {row['lock_hold_p50_ms']:.2f}/{row['lock_hold_p99_ms']:.2f} ms" if row["lock_hold_p50_ms"] else ""
    return (
        f"  {row['op']:<13}{row['scenario']:<7}{row['clients']:>3}  {row['mode']:<8}"
        f"{row['ops_per_s']:>9.0f}/s  x{row['ratio']:.2f}  p50 {row['p50_ms']:6.2f}  p99 {row['p99_ms']:7.2f} ms{hold}"
    )


def dashboard_check(dashboard: dict) -> dict:
    p50 = dashboard["dashboard"]["p50_ms"]
    return {
        "target": f"dashboard GET /admin/ p50 (ms) at {dashboard['ledger_rows']:,} rows",
        "value": p50,
        "limit": DASHBOARD_P50_MS,
        "ok": p50 <= DASHBOARD_P50_MS,
    }


def print_dashboard(dashboard: dict) -> None:
    d, worst, live = dashboard["dashboard"], dashboard["dashboard_worst_tail"], dashboard["live_without_rollup"]
    log("")
    log(f"Dashboard at {dashboard['ledger_rows']:,} ledger rows, GET /admin/ ({d['requests']} requests):")
    for tail, m in ((dashboard["tail_entries"], d), (dashboard["worst_tail_entries"], worst)):
        log(
            f"  {tail:>5,} entries read live after the rollup's cut: p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms"
            f" (the index without the dashboard: p50 {m['floor_p50_ms']:.1f} ms)"
        )
    log(f"  without the rollup (the whole window read live): p50 {live['p50_ms']:.0f} ms")
    log(
        f"  rollup refresh (off the charge path): whole window {dashboard['rollup_first_seconds']:.1f} s, "
        f"the open day {dashboard['rollup_open_day_seconds']:.2f} s (every minute)"
    )


def targets(rows: list[dict], ledger: dict | None) -> list[dict]:
    checks: list[dict] = []

    def add(name: str, value: float | None, limit: float, higher_is_better: bool) -> None:
        ok = value is not None and (value >= limit if higher_is_better else value <= limit)
        checks.append({"target": name, "value": value, "limit": limit, "ok": ok})

    for row in rows:
        label = f"{row['op']} {row['scenario']} x{row['clients']}"
        if row["mode"] == "service":
            add(f"{label}: service / raw throughput", row["ratio"], 0.5, True)
            if row["scenario"] == "hot" and row["clients"] == 16:
                add(f"{label}: service p99 / raw p99", row["p99_vs_raw"], 2.0, False)
        elif row["mode"] == "http" and row["op"] == "batch":
            add(f"{label}: batch HTTP charges/s / raw per-row charges/s", row["ratio"], BATCH_TARGET, True)
        elif row["mode"] == "http":
            add(f"{label}: HTTP / raw throughput", row["ratio"], 0.25, True)
    if ledger:
        big, small = ledger["big"], ledger["small"]
        add("reconcile at 1M rows / bare GROUP BY", big["reconcile_vs_bare"], 2.0, False)
        add(
            "reconcile peak memory at 1M / at 10k",
            big["reconcile_peak_rss_mb"] / small["reconcile_peak_rss_mb"],
            1.2,
            False,
        )
        add(
            "balance read p50 at 1M / at 10k",
            big["balance_read"]["p50_ms"] / small["balance_read"]["p50_ms"],
            1.2,
            False,
        )
    return checks


def print_table(rows: list[dict], ledger: dict | None, checks: list[dict], floor: dict | None = None) -> None:
    log("")
    log("Throughput (ops/s), ratio to raw, latency p50/p99 (ms), wallet lock held p50 (ms)")
    header = f"{'operation':<13}{'wallets':<8}{'cl':>3} | " + " | ".join(
        f"{m:<8}{'ops/s':>7} {'ratio':>5} {'p50':>6} {'p99':>7} {'lock':>5}" for m in MODES
    )
    log(header)
    log("-" * len(header))
    keyed = {(r["op"], r["scenario"], r["clients"], r["mode"]): r for r in rows}
    for op in dict.fromkeys(r["op"] for r in rows):
        for scenario in SCENARIOS:
            for count in CLIENTS:
                cells = []
                for mode in MODES:
                    r = keyed.get((op, scenario, count, mode))
                    if r is None:
                        cells.append(" " * 36)
                        continue
                    lock = f"{r['lock_hold_p50_ms']:.2f}" if r["lock_hold_p50_ms"] else "-"
                    cells.append(
                        f"{'':<8}{r['ops_per_s']:>7.0f} {r['ratio']:>5.2f} "
                        f"{r['p50_ms']:>6.2f} {r['p99_ms']:>7.2f} {lock:>5}"
                    )
                log(f"{op:<13}{scenario:<8}{count:>3} | " + " | ".join(cells))
    floors = [r for r in rows if r["mode"] == "floor"]
    if floors:
        log("")
        log("Batch SQL floor (Client.batch_floor: the batch's rows in bulk statements on bare psycopg, no endpoint):")
        for r in floors:
            reach = "reachable" if r["ratio"] >= BATCH_TARGET else "out of reach for any endpoint"
            log(
                f"  {r['clients']:>2} client(s): {r['ops_per_s']:,.0f} charges/s, x{r['ratio']:.2f} raw per-row: "
                f"the batch target (x{BATCH_TARGET:g}) is {reach} on this machine in this run"
            )
    if floor:
        log("")
        log(f"HTTP floor (a 404 through gunicorn + Django, 1 client): p50 {floor['p50_ms']:.2f} ms.")
        for op in dict.fromkeys(r["op"] for r in rows):
            raw = keyed.get((op, "spread", 1, "raw"))
            requests = HTTP_REQUESTS_PER_OP.get(op, 1)
            if raw and op != "batch":  # a batch request carries 100 charges: the floor is no ceiling there
                log(
                    f"  {op}: raw p50 {raw['p50_ms']:.2f} ms at 1 client and {requests} request(s) per operation, "
                    f"so HTTP / raw cannot exceed about {raw['p50_ms'] / (requests * floor['p50_ms']):.2f} there, "
                    "whatever the endpoints do."
                )
    if ledger:
        log("")
        log("Ledger size     balance p50/p99 (ms)   reconcile (s)  rows/s      peak RSS   bare GROUP BY (s)  ratio")
        for label in ("small", "big"):
            m = ledger[label]
            b = m["balance_read"]
            log(
                f"{m['ledger_rows']:>12,}    {b['p50_ms']:6.3f} / {b['p99_ms']:6.3f}       "
                f"{m['reconcile_seconds']:8.3f}    {m['reconcile_rows_per_s']:>10,.0f}  "
                f"{m['reconcile_peak_rss_mb']:6.1f} MB"
                f"  {m['bare_aggregate_seconds']:10.3f}         {m['reconcile_vs_bare']:.2f}"
            )
        log(f"(idle Django process: {ledger['idle_process']['peak_rss_mb']:.1f} MB)")
    log("")
    log("Targets")
    for check in checks:
        value = "n/a" if check["value"] is None else f"{check['value']:.2f}"
        log(f"  [{'ok' if check['ok'] else 'MISS'}] {check['target']}: {value} (limit {check['limit']})")


def charts(rows: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for op in dict.fromkeys(r["op"] for r in rows):
        fig, axes = plt.subplots(1, len(SCENARIOS), figsize=(11, 4), sharey=False)
        for ax, (scenario, title) in zip(axes, SCENARIOS.items(), strict=True):
            width = 0.27
            for i, mode in enumerate(MODES):
                values = [
                    next(
                        (
                            r["ops_per_s"]
                            for r in rows
                            if (r["op"], r["scenario"], r["clients"], r["mode"]) == (op, scenario, c, mode)
                        ),
                        0,
                    )
                    for c in CLIENTS
                ]
                ax.bar([x + (i - 1) * width for x in range(len(CLIENTS))], values, width, label=mode)
            ax.set_xticks(range(len(CLIENTS)), [f"{c} client{'s' if c > 1 else ''}" for c in CLIENTS])
            ax.set_title(f"{op.replace('_', ' + ')}: {title}")
            ax.set_ylabel("operations / s")
            ax.legend()
        fig.tight_layout()
        path = OUT / f"{op}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(str(path.relative_to(env.ROOT)))
    return written


def machine() -> dict:
    import os

    import psycopg

    with psycopg.connect(env.db_url(env.OPS_DB)) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('server_version', 'synchronous_commit', 'fsync', 'shared_buffers', 'max_connections')"
            ).fetchall()
        )
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgres": settings,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s phases instead of 5 s")
    parser.add_argument("--duration", type=float, help="seconds measured per phase")
    parser.add_argument("--only", choices=OPS, action="append", help="operations to run (default: all)")
    parser.add_argument("--clients", type=int, action="append", help="client counts (default: 1, 4, 16)")
    parser.add_argument("--skip-ledger", action="store_true", help="skip the 10k / 1M ledger measurements")
    parser.add_argument("--ledger-rows", type=int, default=1_000_000)
    parser.add_argument("--soak", action="store_true", help="run the mixed 32-client soak instead")
    parser.add_argument("--soak-seconds", type=float, default=300)
    parser.add_argument("--soak-clients", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="do not write docs/bench/")
    parser.add_argument(
        "--unsigned",
        action="store_true",
        help="without the ledger's hash chain (bench/unsigned.py): the baseline its cost is measured against",
    )
    parser.add_argument(
        "--indexes", action="store_true", help="only report the ledger's indexes: entries and size per index"
    )
    parser.add_argument("--index-rows", type=int, default=200_000, help="ledger rows for --indexes")
    parser.add_argument("--skip-dashboard", action="store_true", help="skip the dashboard at 1M ledger rows")
    parser.add_argument("--dashboard-only", action="store_true", help="only the dashboard at --ledger-rows rows")
    parser.add_argument(
        "--events", action="store_true", help="only the charge path before events, with events, with an endpoint"
    )
    parser.add_argument(
        "--events-rounds", type=int, default=20, help="interleaved rounds for --events and --chain-cost (1.5 s each)"
    )
    parser.add_argument(
        "--chain-cost", action="store_true", help="only the charge path signed against unsigned (the hash chain's cost)"
    )
    args = parser.parse_args(argv)
    env.static_collect()
    if args.unsigned:
        os.environ["BENCH_UNSIGNED"] = "1"  # read by the gunicorn app and the client processes

    if args.dashboard_only:
        from bench.dashboard import DASHBOARD_DB, dashboard_benchmark

        env.django_setup(DASHBOARD_DB)
        log("dashboard: GET /admin/ at size")
        dashboard = dashboard_benchmark(rows=args.ledger_rows, log=log)
        print_dashboard(dashboard)
        check = dashboard_check(dashboard)
        log(f"  [{'ok' if check['ok'] else 'MISS'}] {check['target']}: {check['value']:.2f} (limit {check['limit']})")
        if not args.no_write:
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / "dashboard.json").write_text(json.dumps(dashboard, indent=2) + "\n")
        return

    if args.indexes:
        from bench.indexes import index_report

        report = index_report(rows=args.index_rows, log=log)
        if not args.no_write:
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / "indexes.json").write_text(json.dumps(report, indent=2) + "\n")
        return

    log(f"creating database {env.OPS_DB}")
    env.database_recreate(env.OPS_DB)
    env.database_migrate(env.OPS_DB)
    env.django_setup(env.OPS_DB)
    OUT.mkdir(parents=True, exist_ok=True)

    if args.soak:
        from bench.soak import soak

        report = soak(seconds=args.soak_seconds, clients=args.soak_clients, log=log)
        if not args.no_write:
            (OUT / "soak.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        sys.exit(0 if report["ok"] else 1)

    if args.events or args.chain_cost:
        from bench.events import chain_benchmark, events_benchmark, seed_events

        benchmark, name = (events_benchmark, "events") if args.events else (chain_benchmark, "chain_cost")
        seed_events(log)
        # Many short interleaved rounds: their median is steadier on noisy cores than a few long ones.
        report = benchmark(duration=args.duration or 1.5, rounds=args.events_rounds, log=log)
        if not args.no_write:
            (OUT / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        sys.exit(0 if report["ok"] else 1)

    if args.clients:
        CLIENTS[:] = sorted(args.clients)
    duration = args.duration or (2.0 if args.quick else 5.0)
    warmup = 0.5 if args.quick else 1.0
    seed()
    started = time.time()
    log(f"throughput: {duration:g} s per phase after {warmup:g} s warm-up")
    rows, floor = throughput_benchmark(ops=args.only or OPS, duration=duration, warmup=warmup)
    ledger = None
    if not args.skip_ledger:
        log("ledger size: balance reads and reconciliation")
        from bench.ledger import ledger_benchmark

        ledger = ledger_benchmark(big_rows=args.ledger_rows, log=log)
    dashboard = None
    if not args.skip_dashboard:
        log("dashboard: GET /admin/ at size")
        from bench.dashboard import dashboard_benchmark

        dashboard = dashboard_benchmark(rows=args.ledger_rows, log=log)
    checks = targets(rows, ledger) + ([dashboard_check(dashboard)] if dashboard else [])
    print_table(rows, ledger, checks, floor)
    if dashboard:
        print_dashboard(dashboard)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "quick": args.quick,
        "duration_s": duration,
        "warmup_s": warmup,
        "machine": machine(),
        "throughput": rows,
        "http_floor": floor,
        "ledger": ledger,
        "dashboard": dashboard,
        "targets": checks,
    }
    if not args.no_write:
        (OUT / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        written = charts(rows)
        log(f"\nwrote docs/bench/results.json, {', '.join(written)}")
