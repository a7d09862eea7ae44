"""psycopg's pipeline mode for a request transaction: statements travel together, one wait per answer needed.

On the API charge, most statements need no answer before the next is sent:
the idempotency claim can travel with the wallet lock (the lock's answer is
the first one the code reads), and the posting, the stored response and the
COMMIT can travel together (nothing reads their answers before the commit).
In pipeline mode psycopg sends each statement as it is executed and waits for
the server only when a result is read or at a sync; so the charge's
transaction costs three waits (BEGIN, claim + lock, post + response + COMMIT)
instead of six (docs/performance.md, "Round trips").

What changes for code inside `pipelined()`:

* an error raised by a statement surfaces where the next result is read (a
  later statement's fetch, or `commit_now()`), not at its own `execute`; a
  failed statement aborts the statements queued after it, and the
  transaction rolls back as usual;
* `cursor.rowcount` of a statement is unknown until a result is read: code
  that decides on a row count reads the result first (`fetchone`), or does
  not run pipelined;
* `config.rows` does not read back the primary key of a row it inserts with
  an UPDATE (`row_update_then_insert`) or in bulk (`RowBuffer`): the key is
  filled in by `commit_now()`; until then `instance.pk` is None.

Only a caller that knows its whole transaction opts in (the charge view,
`billing.api_kit.MoneyPostView.pipelined`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from django.db import connection

_active: ContextVar[list[Callable[[], Any]] | None] = ContextVar("pipeline_after_sync", default=None)


class _Pipeline(psycopg.Pipeline):
    """psycopg's pipeline, leaving pipeline mode without one more round trip when nothing is in flight.

    psycopg sends a Sync and waits for it whenever a pipeline block ends,
    even right after `commit()` has synced everything: a wasted round trip on
    every request. With nothing queued and no result outstanding, libpq can
    leave pipeline mode at once.
    """

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        if exc_val is None and self.level == 1 and not self.command_queue and not self.result_queue:
            self._exit(None)
            return
        super().__exit__(exc_type, exc_val, exc_tb)


def pipeline_active() -> bool:
    return _active.get() is not None


@contextmanager
def pipelined() -> Iterator[None]:
    """Run the block's statements on the default connection in pipeline mode (see the module docstring)."""
    if _active.get() is not None:
        yield
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw._pipeline is None:
        raw._pipeline = _Pipeline(raw)  # psycopg reuses a pipeline object it finds (Connection.pipeline())
    token = _active.set([])
    try:
        with connection.wrap_database_errors, raw.pipeline():
            yield
    finally:
        _active.reset(token)


def after_sync(callback: Callable[[], Any]) -> None:
    """Run `callback` once `commit_now()` has the answers (reading a result queued in the pipeline)."""
    pending = _active.get()
    if pending is None:
        raise RuntimeError("after_sync() outside pipelined()")
    pending.append(callback)


def commit_now() -> None:
    """Commit the transaction: COMMIT travels with every statement still queued, one wait for all.

    Call it last inside `pipelined()`, inside the outermost `transaction.atomic()`:
    the atomic block's own commit then finds nothing left to commit and runs
    its on-commit callbacks. An error of any queued statement (or of the
    COMMIT) is raised here and the transaction is rolled back as usual.
    """
    pending = _active.get()
    if pending is None:
        raise RuntimeError("commit_now() outside pipelined()")
    with connection.wrap_database_errors:
        connection.connection.commit()
    while pending:
        pending.pop(0)()
