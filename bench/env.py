"""Databases, Django set-up and gunicorn for the benchmarks.

The benchmark databases are its own (`cl_bench*` by default, dropped and
recreated on every run), so it never touches development or test data.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_DATABASE_SERVER", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
OPS_DB = os.environ.get("BENCH_DATABASE", "cl_bench")
LEDGER_DB = f"{OPS_DB}_ledger"


# The benchmark's own processes need a key; never used outside bench databases.
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")
os.environ.setdefault("CREDITLEDGER_LEDGER_KEY", "bench:bench-only-ledger-key-not-for-production")


def db_url(name: str) -> str:
    return f"{SERVER}/{name}"


def child_env(database: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url(database),
        REDIS_URL=REDIS_URL,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        CONN_MAX_AGE="600",
    )
    env.update(extra)
    return env


def database_recreate(name: str) -> None:
    with psycopg.connect(db_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_migrate(name: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=child_env(name),
        check=True,
    )


def static_collect() -> None:
    """`manage.py collectstatic` before timing: gunicorn and the admin's pages (DEBUG off) need its manifest.

    `make run` collects too, but a fresh clone that runs `make bench` first
    has no staticfiles/ yet, and every admin page would fail on its first
    `{% static %}` ("Missing staticfiles manifest entry"). collectstatic
    copies only what changed, so running it every time costs little and
    keeps the manifest in step with static/.
    """
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=child_env(OPS_DB),
        check=True,
    )


def django_setup(database: str) -> None:
    """Configure this process's Django for `database` (once per process)."""
    os.environ.update(child_env(database))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn config.wsgi -w 4` against the benchmark database, for the HTTP clients."""

    def __init__(self, database: str, workers: int = 4) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                # bench.unsigned:application is config.wsgi without the hash chain (--unsigned).
                "bench.unsigned:application" if os.environ.get("BENCH_UNSIGNED") == "1" else "config.wsgi",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--backlog",
                "256",
            ],
            cwd=ROOT,
            env=child_env(database),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
