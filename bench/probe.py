"""A measurement run in a fresh process, so its peak memory is its own.

    python -m bench.probe reconcile   # time reconciliation_run() once
    python -m bench.probe balance N   # N balance reads through the selector
    python -m bench.probe idle        # Django loaded, nothing done (memory floor)
    python -m bench.probe dashboard N # N GET /admin/ with the dashboard, and N without (the floor)
    python -m bench.probe rollup      # time one console rollup refresh

DATABASE_URL chooses the database. Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import resource
import sys
import time


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _reconcile() -> dict:
    try:
        from billing.reconciliation import reconciliation_run
    except ImportError:
        reconciliation_run = None
    if reconciliation_run is None:  # hook: no reconciliation module yet, time the bare check instead
        from django.db import connection

        started = time.perf_counter()
        with connection.chunked_cursor() as cursor:
            cursor.execute("SELECT wallet_id, sum(amount) FROM billing_ledgerentry GROUP BY wallet_id")
            while cursor.fetchmany(2000):
                pass
        return {"seconds": time.perf_counter() - started, "status": "bare-aggregate (no reconciliation module)"}
    started = time.perf_counter()
    run = reconciliation_run(trigger="bench")
    return {
        "seconds": time.perf_counter() - started,
        "status": run.status,
        "wallets_checked": run.wallets_checked,
        "discrepancies": run.discrepancy_count,
    }


def _balance(reads: int) -> dict:
    from accounts.models import Account
    from billing.selectors import wallets_for_account

    accounts = list(Account.objects.filter(external_id__startswith="bench-").only("id", "public_id"))
    rng = random.Random(7)
    latencies = []
    for _ in range(reads):
        account = accounts[rng.randrange(len(accounts))]
        started = time.perf_counter()
        wallets = wallets_for_account(account)
        latencies.append(time.perf_counter() - started)
        assert wallets
    latencies.sort()
    return {
        "reads": reads,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "mean_ms": sum(latencies) / len(latencies) * 1000,
    }


def _dashboard(requests: int) -> dict:
    """GET /admin/ as a superuser (the dashboard) and, alternately, as staff who see no dashboard (the floor)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    users = get_user_model().objects
    admin = users.filter(username="bench-admin").first() or users.create_superuser("bench-admin", "b@example.com", "b")
    staff = users.filter(username="bench-staff").first() or users.create_user("bench-staff", is_staff=True)
    clients = {"dashboard": Client(), "floor": Client()}
    clients["dashboard"].force_login(admin)
    clients["floor"].force_login(staff)
    latencies: dict[str, list[float]] = {"dashboard": [], "floor": []}
    for n in range(requests + 1):
        for name, client in clients.items():
            started = time.perf_counter()
            response = client.get("/admin/", secure=True)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.status_code
            assert (b"console-dashboard" in response.content) == (name == "dashboard")
            if n:  # the first request warms the process (templates, URLconf)
                latencies[name].append(elapsed)
    result: dict = {"requests": requests}
    for name, values in latencies.items():
        values.sort()
        prefix = "" if name == "dashboard" else "floor_"
        result[f"{prefix}p50_ms"] = values[len(values) // 2] * 1000
        result[f"{prefix}p99_ms"] = values[int(len(values) * 0.99)] * 1000
    return result


def _rollup() -> dict:
    from console.services import ledger_rollup_refresh

    started = time.perf_counter()
    refreshed = ledger_rollup_refresh()
    return {"seconds": time.perf_counter() - started, "ledger_days": refreshed.ledger_days}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    what = sys.argv[1]
    if what == "reconcile":
        result = _reconcile()
    elif what == "dashboard":
        result = _dashboard(int(sys.argv[2]) if len(sys.argv) > 2 else 40)
    elif what == "rollup":
        result = _rollup()
    elif what == "balance":
        result = _balance(int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
    else:
        result = {}
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
