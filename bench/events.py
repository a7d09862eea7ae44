"""`python -m bench --events`: what events and webhooks cost the charge path.

One process charges 200 funded wallets in turn, one client, two ways:

* **api** (the targets): `POST /api/v1/charges` with an Idempotency-Key
  and a service key, through Django's WSGI handler in this process: the
  whole request a client app makes (middleware, authentication, the
  pipelined idempotent transaction, the stored response), without a
  socket's noise;
* **service** (for information): `charge_create` alone, outside any
  request: the bare posting, not pipelined (each statement waits for its
  answer); the event travels in the posting's own statement either way.

Each in three variants measured in interleaved rounds (A B C, C B A, ...),
so the machine's drift hits each alike; a variant's ratio is the median of
its per-round ratios to `before` (`_paired_ratio`):

* **before**: no event recorded and no balance observer (the charge path as
  it was before events: the bench switches both off in this process);
* **events**: `charge.created` recorded in the charge's transaction (the
  entry's `event_type` column: an entry's event is the entry), the
  balance-alert observer on, no webhook endpoint;
* **control**: `before` again, an A/A comparison: how far the machine's
  noise alone moves a ratio in this run (reported, not a target);
* **endpoint**: as events, plus one enabled endpoint subscribed to
  `charge.created`: each charge also writes its outbox message (in the same
  statement) and, after commit, enqueues its dispatch (no worker runs:
  delivery itself is off the charge path).

Targets (issue 14, on the api path): events >= 0.95 x before; endpoint >= 0.85 x before.

Beside the rates, each round reads the CPU this process and its PostgreSQL
backend used (the backend's from /proc when the server runs on this
machine), so the report says which side an event's cost falls on.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from decimal import Decimal

WALLETS = 200


def seed_events(log) -> None:
    """Funded wallets to charge in turn (fewer than the main seed: only charges run here)."""
    from accounts.models import Account, ApiKey
    from accounts.services import api_key_create
    from bench import clients
    from billing.services import Actor, grant_create
    from pricing.models import CreditType

    credit_type = CreditType.objects.get(code="credits")
    accounts = Account.objects.bulk_create(
        [Account(external_id=f"bench-events-{i}", name=f"Bench {i}") for i in range(WALLETS)]
    )
    log(f"  seeding {WALLETS} funded wallets")
    for account in accounts:
        grant_create(account=account, credit_type=credit_type, amount=Decimal("1000000"), actor=Actor.system())
    clients.STATE.update(
        targets={"spread": [clients.Target(a, a.pk, 0, a.public_id) for a in accounts]},
        credit_type=credit_type,
        secret=api_key_create(kind=ApiKey.Kind.SERVICE, name="bench-events").secret,
    )


def _charger(path: str):
    """One charge on the n-th wallet (in turn), by `path`: "api" or "service"."""
    from bench import clients

    targets = clients.STATE["targets"]["spread"]
    credit_type = clients.STATE["credit_type"]
    if path == "service":
        from billing.services import Actor, charge_create

        actor = Actor.system()
        amount = Decimal("0.01")

        def charge(n: int) -> None:
            charge_create(
                account=targets[n % len(targets)].account, credit_type=credit_type, amount=amount, actor=actor
            )

        return charge
    import io
    import json

    from django.core.handlers.wsgi import WSGIHandler

    # Django's WSGI handler called directly, as gunicorn calls it: the whole request, no socket,
    # and none of the test client's per-request signal wiring (which made the phases noisy).
    handler = WSGIHandler()
    authorization = f"Bearer {clients.STATE['secret']}"
    answers: list[str] = []

    def start_response(status: str, headers: list) -> None:
        answers.append(status)

    def charge(n: int) -> None:
        body = json.dumps(
            {"account": targets[n % len(targets)].public_id, "credit_type": credit_type.code, "amount": "0.01"}
        ).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/charges",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": authorization,
            "HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex,
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(),
        }
        answers.clear()
        response = handler(environ, start_response)
        content = b"".join(response)
        response.close()
        if not answers or not answers[0].startswith("201"):
            raise RuntimeError(f"charge answered {answers}: {content[:300]!r}")

    return charge


def _backend_cpu() -> tuple[int, float] | None:
    """This process's PostgreSQL backend: (its pid, the CPU seconds it used so far), or None where /proc cannot say.

    Read from Linux's /proc, so only for a server on this machine and in its
    process namespace: a pid that is not a postgres process there (a server
    in a container, another host) gives None rather than someone else's time.
    """
    from django.db import connection

    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    try:
        with open(f"/proc/{pid}/comm") as comm:
            if "postgres" not in comm.read():
                return None
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None  # no /proc, or no such process here
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _charges(path: str, duration: float) -> tuple[int, float, float, float | None]:
    """Charges done, wall seconds, this process's CPU seconds, its PostgreSQL backend's CPU seconds (or None)."""
    charge = _charger(path)
    done = 0
    started, cpu, backend = time.perf_counter(), time.process_time(), _backend_cpu()
    deadline = started + duration
    while time.perf_counter() < deadline:
        charge(done)
        done += 1
    backend_after = _backend_cpu()
    # The same backend before and after (a reconnect in between would compare two processes).
    same = backend is not None and backend_after is not None and backend[0] == backend_after[0]
    backend_used = backend_after[1] - backend[1] if same else None
    return done, time.perf_counter() - started, time.process_time() - cpu, backend_used


def _statements_per_charge(path: str) -> float:
    """Statements sent to PostgreSQL per charge (BEGIN/COMMIT included), over 50 charges."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    charge = _charger(path)
    with CaptureQueriesContext(connection) as captured:
        for n in range(50):
            charge(n)
    return len(captured.captured_queries) / 50


def _in_turn(variants: dict, round_no: int) -> list:
    """The variants in order on even rounds, reversed on odd ones (A B C, C B A, ...).

    A drift within a round (a table growing, a cache filling, a background
    checkpoint) would otherwise always favour whichever variant runs first.
    """
    items = list(variants.items())
    return items if round_no % 2 == 0 else items[::-1]


def _paired_ratio(variant: list[float], baseline: list[float]) -> float:
    """The median over rounds of variant / baseline measured in the same round.

    Each round runs every variant back to back, so a round's ratio compares
    them under the same machine conditions; the machine's speed drifts by 2x
    and more over a run (a noisy VM), which moves every variant's own median
    but not the ratios. The per-variant medians are reported beside it.
    """
    return round(statistics.median(v / b for v, b in zip(variant, baseline, strict=True)), 3)


def _paired_difference(variant: list[float], baseline: list[float]) -> float:
    """The median over rounds of variant - baseline measured in the same round (as `_paired_ratio`)."""
    return round(statistics.median(v - b for v, b in zip(variant, baseline, strict=True)), 3)


def events_benchmark(*, duration: float, rounds: int, log) -> dict:
    from django.conf import settings

    from billing import core
    from billing import events as billing_events
    from billing.alerts import balance_alerts_observe
    from webhooks.services import endpoint_create, endpoint_delete

    rows = billing_events.entry_event_rows
    settings.CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE = True  # the endpoint's URL is never called: no worker runs

    def before() -> None:
        billing_events.entry_event_rows = lambda *args, **kwargs: []
        if balance_alerts_observe in core._balance_observers:
            core._balance_observers.remove(balance_alerts_observe)

    def events() -> None:
        billing_events.entry_event_rows = rows
        core.balance_observer_register(balance_alerts_observe)

    # `control` is `before` again: its ratio to `before` (an A/A comparison) is how far this run's noise alone
    # moves a ratio, the resolution the other two are read at.
    variants = {
        "before": (before, None),
        "control": (before, None),
        "events": (events, None),
        "endpoint": (events, "endpoint"),
    }
    report: dict = {"duration_s": duration, "rounds": rounds}
    endpoint = None
    try:
        for path in ("api", "service"):
            rates: dict[str, list[float]] = {name: [] for name in variants}
            cpu_ms: dict[str, list[float]] = {name: [] for name in variants}
            backend_ms: dict[str, list[float]] = {name: [] for name in variants}
            statements: dict[str, float] = {}
            _charges(path, min(duration, 1.0))  # warm-up: statement caches, connections
            for round_no in range(rounds):
                for name, (setup, needs_endpoint) in _in_turn(variants, round_no):
                    setup()
                    if needs_endpoint and endpoint is None:
                        endpoint, _ = endpoint_create(url="http://127.0.0.1:9/bench", event_types=["charge.created"])
                    if not needs_endpoint and endpoint is not None:
                        endpoint_delete(endpoint=endpoint)
                        endpoint = None
                    if name not in statements:
                        statements[name] = _statements_per_charge(path)
                    done, elapsed, cpu, backend = _charges(path, duration)
                    rates[name].append(done / elapsed)
                    cpu_ms[name].append(cpu * 1000 / done)
                    if backend is not None:
                        backend_ms[name].append(backend * 1000 / done)
                    log(
                        f"  {path:7} round {round_no + 1} {name:9} {done / elapsed:8.1f} charges/s, "
                        f"{cpu * 1000 / done:.2f} ms client CPU per charge"
                        + (f", {backend * 1000 / done:.2f} ms PostgreSQL CPU" if backend is not None else "")
                    )
            medians = {name: statistics.median(values) for name, values in rates.items()}
            base = medians["before"]
            result = {
                "charges_per_s": {name: round(value, 1) for name, value in medians.items()},
                "ratio_events": _paired_ratio(rates["events"], rates["before"]),
                "ratio_endpoint": _paired_ratio(rates["endpoint"], rates["before"]),
                "ratio_control": _paired_ratio(rates["control"], rates["before"]),
                "ratio_of_medians": {
                    "events": round(medians["events"] / base, 3),
                    "endpoint": round(medians["endpoint"] / base, 3),
                },
                "rates": {name: [round(v, 1) for v in values] for name, values in rates.items()},
                "client_cpu_ms_per_charge": {name: round(statistics.median(v), 3) for name, v in cpu_ms.items()},
                # Per round, variant minus `before`, median over rounds: what the event adds to each side.
                "client_cpu_ms_added": {
                    name: _paired_difference(cpu_ms[name], cpu_ms["before"]) for name in ("events", "endpoint")
                },
                "postgres_cpu_ms_per_charge": {
                    name: round(statistics.median(v), 3) for name, v in backend_ms.items() if v
                },
                "postgres_cpu_ms_added": {
                    name: _paired_difference(backend_ms[name], backend_ms["before"])
                    for name in ("events", "endpoint")
                    if backend_ms[name]
                },
                "statements_per_charge": {name: round(v, 2) for name, v in statements.items()},
            }
            report[path] = result
            log(
                f"{path}: before {base:.1f}/s, events {medians['events']:.1f}/s (x{result['ratio_events']}), "
                f"endpoint {medians['endpoint']:.1f}/s (x{result['ratio_endpoint']}), "
                f"control (before again) x{result['ratio_control']}; "
                f"statements per charge {result['statements_per_charge']}"
            )
            log(
                f"{path}: CPU per charge added to the client (ms) {result['client_cpu_ms_added']}, "
                f"to PostgreSQL {result['postgres_cpu_ms_added'] or 'not measured (no /proc for its backend)'}"
            )
    finally:
        events()
        if endpoint is not None:
            endpoint_delete(endpoint=endpoint)
        # The fan-out requests published stay queued for no worker (a few per second of the
        # endpoint phase); a worker started later finds no message to dispatch in its database.
    api = report["api"]
    report["ok"] = api["ratio_events"] >= 0.95 and api["ratio_endpoint"] >= 0.85
    log(f"targets (api path): events >= 0.95, endpoint >= 0.85 -> {'ok' if report['ok'] else 'MISSED'}")
    return report


def chain_benchmark(*, duration: float, rounds: int, log) -> dict:
    """The hash chain's cost on the charge path: signed against unsigned, interleaved rounds, both paths.

    `unsigned` swaps `chain.entry_sign` for bench/unsigned.py's no-op in this
    process (the statements are unchanged: the hash and head travel empty).
    Target (issue 13): signed >= 0.95 x unsigned on the api path.
    """
    from billing import chain

    signed = chain.entry_sign

    def unsigned(entry, *, prev_hash: str) -> str:
        entry.key_id = ""
        entry.entry_hash = ""
        return ""

    variants = {"unsigned": unsigned, "signed": signed}
    report: dict = {"duration_s": duration, "rounds": rounds}
    try:
        for path in ("api", "service"):
            rates: dict[str, list[float]] = {name: [] for name in variants}
            _charges(path, min(duration, 1.0))
            for round_no in range(rounds):
                for name, sign in _in_turn(variants, round_no):
                    chain.entry_sign = sign
                    done, elapsed, _, _ = _charges(path, duration)
                    rates[name].append(done / elapsed)
                    log(f"  {path:7} round {round_no + 1} {name:9} {done / elapsed:8.1f} charges/s")
            medians = {name: statistics.median(values) for name, values in rates.items()}
            report[path] = {
                "charges_per_s": {name: round(value, 1) for name, value in medians.items()},
                "ratio_signed": _paired_ratio(rates["signed"], rates["unsigned"]),
                "ratio_of_medians": round(medians["signed"] / medians["unsigned"], 3),
                "rates": {name: [round(v, 1) for v in values] for name, values in rates.items()},
            }
            log(
                f"{path}: unsigned {medians['unsigned']:.1f}/s, signed {medians['signed']:.1f}/s "
                f"(x{report[path]['ratio_signed']})"
            )
    finally:
        chain.entry_sign = signed
    report["ok"] = report["api"]["ratio_signed"] >= 0.95
    log(f"target (api path): signed >= 0.95 x unsigned -> {'ok' if report['ok'] else 'MISSED'}")
    return report
