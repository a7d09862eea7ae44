"""Count database round trips: each time the client waits for PostgreSQL to answer.

`CaptureQueriesContext` lists the statements Django sent, but not BEGIN,
COMMIT, the connection health check, nor whether several statements travel
together (psycopg's pipeline mode). This wraps the psycopg connection's
`wait()`, the one place every blocking exchange with the server goes through,
and records each exchange that had to wait for the server's reply (a
generator that yields "wait until readable"), with the statements sent in it.
Statements sent in pipeline mode without waiting are attached to the next
exchange that waits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection
from django.db.backends.signals import connection_created
from psycopg._enums import Wait  # psycopg pinned (requirements.txt): its wait states


@dataclass
class RoundTrips:
    trips: list[list[str]] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.trips)

    def describe(self) -> str:
        return "\n".join(f"{n}. {' + '.join(sent) or '(nothing sent: a wait)'}" for n, sent in enumerate(self.trips, 1))


def _label(sql: str | bytes) -> str:
    text = sql.decode() if isinstance(sql, bytes) else str(sql)
    return " ".join(text.split())[:90]


def _instrument(raw, counter: RoundTrips) -> None:
    raw._roundtrip_counter = counter
    if getattr(raw, "_roundtrips_wrapped", False):
        return
    raw._roundtrips_wrapped = True
    raw._roundtrip_command = None  # the psycopg command (BEGIN, COMMIT...) being exchanged, if any
    raw._roundtrip_hold_last = False
    raw._roundtrip_new = False  # a command began or ended: the next wait for the server is a new exchange
    original_wait = raw.wait
    original_exec_command = raw._exec_command

    def record() -> None:
        current = raw._roundtrip_counter
        if current is None:
            return
        command = raw._roundtrip_command
        if raw._roundtrip_hold_last:  # a pipelined BEGIN's sync: the statement that triggered it goes next
            raw._roundtrip_hold_last = False
            sent, current._pending[:] = current._pending[:-1], current._pending[-1:]
        elif command is None:
            sent, current._pending[:] = current._pending[:], []
        elif raw._pipeline is not None:  # queued statements travel with it
            sent, current._pending[:] = [*current._pending, command], []
        else:  # its own exchange; the statement that triggered it (BEGIN) goes next
            sent = [command]
        current.trips.append(sent or [OUTSIDE_DJANGO])

    def wait(gen, *args, **kwargs):
        def watched():
            waited = False
            value = None
            try:
                while True:
                    state = gen.send(value)
                    if raw._roundtrip_new:
                        waited, raw._roundtrip_new = False, False
                    if state == Wait.R and not waited:
                        waited = True
                        record()
                    value = yield state
            except StopIteration as stop:
                return stop.value

        return original_wait(watched(), *args, **kwargs)

    def exec_command(command, *args, **kwargs):  # psycopg's own BEGIN, COMMIT, ROLLBACK
        inner = original_exec_command(command, *args, **kwargs)
        current = raw._roundtrip_counter
        if raw._pipeline is not None and current is not None:  # queued like any statement
            label = _label(command)
            if label.startswith("BEGIN") and current._pending:
                # psycopg sends BEGIN, then waits, before the statement being executed (already listed)
                current._pending.insert(len(current._pending) - 1, label)
                raw._roundtrip_hold_last = True
            else:
                current._pending.append(label)
            return inner

        def watched():
            raw._roundtrip_command, raw._roundtrip_new = _label(command), True
            try:
                return (yield from inner)
            finally:
                raw._roundtrip_command, raw._roundtrip_new = None, True

        return watched()

    raw.wait = wait
    raw._exec_command = exec_command


# A statement psycopg sent that went through neither Django's cursor nor
# psycopg's transaction commands: Django's health check (`SELECT 1` on a raw cursor).
OUTSIDE_DJANGO = "SELECT 1 (health check, on a raw cursor)"


def _django_statements(counter: RoundTrips):
    def wrapper(execute, sql, params, many, context):
        counter._pending.append(_label(sql))
        return execute(sql, params, many, context)

    return wrapper


@contextmanager
def count_round_trips() -> Iterator[RoundTrips]:
    """Record the default connection's round trips in the block (a new connection made in it included)."""
    counter = RoundTrips()

    def created(sender, connection, **kwargs):  # a connection made inside the block
        _instrument(connection.connection, counter)

    connection_created.connect(created)
    if connection.connection is not None:
        _instrument(connection.connection, counter)
    try:
        with connection.execute_wrapper(_django_statements(counter)):
            yield counter
    finally:
        connection_created.disconnect(created)
        if connection.connection is not None:
            connection.connection._roundtrip_counter = None
