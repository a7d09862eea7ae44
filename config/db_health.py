"""The connection health check, only for a connection that has been idle.

With persistent connections (`CONN_MAX_AGE`) Django checks a reused
connection before a request's first statement (`CONN_HEALTH_CHECKS`:
`SELECT 1`), so a connection the server dropped while it sat idle is replaced
instead of failing the request. That is one more round trip on every request
(docs/performance.md, "Round trips"). A connection that finished a request
less than `DATABASE_HEALTH_CHECK_IDLE_S` seconds ago (default 2) was working
then; checking it again costs more than it finds. Such a connection is not
checked: if the server went away in those seconds, the request fails as one
in flight would have (500, nothing written), and Django closes the
connection at the end of it (`errors_occurred`), so the next request
reconnects. 0 checks every request, as Django does.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connections


def _recently_used(**kwargs) -> None:
    # Connected after Django's close_old_connections, which just reset health_check_done.
    idle_limit = settings.DATABASE_HEALTH_CHECK_IDLE_S
    if idle_limit <= 0:
        return
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        last = getattr(conn, "request_finished_at", None)
        if conn.connection is not None and last is not None and now - last < idle_limit:
            conn.health_check_done = True


def _finished(**kwargs) -> None:
    # After Django's close_old_connections: a connection it closed is None here.
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        conn.request_finished_at = now if conn.connection is not None else None


def connect() -> None:
    request_started.connect(_recently_used, dispatch_uid="config.db_health.started")
    request_finished.connect(_finished, dispatch_uid="config.db_health.finished")
