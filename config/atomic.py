"""`transaction.atomic()` for the service layer, without savepoints a caller does not need.

A service that moves credits runs in `transaction.atomic()`: the outermost
block when called on its own, a savepoint when nested in a caller's
transaction, so that its failure rolls back its own writes and leaves the
caller's transaction usable.

The API's request transaction (`billing.idempotency.run_idempotent`) never
continues after a failed effect: a decline ends the whole transaction, claim
included, and is recorded afresh. So there a service's savepoint would only
cost two more round trips (SAVEPOINT, RELEASE) on every request. Inside
`services_join()` `service_atomic()` joins the caller's transaction instead;
anywhere else it is plain `transaction.atomic()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

_join: ContextVar[bool] = ContextVar("services_join", default=False)


def service_atomic() -> transaction.Atomic:
    return transaction.atomic(savepoint=not _join.get())


@contextmanager
def services_join() -> Iterator[None]:
    """Services called in this block join the current transaction without a savepoint.

    Only for a caller that, when a service raises, lets the exception end
    its transaction: there is no savepoint left to roll back to.
    """
    token = _join.set(True)
    try:
        yield
    finally:
        _join.reset(token)
