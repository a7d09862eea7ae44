"""`transaction.atomic()` for the service layer, without a savepoint its caller already made.

A service that moves credits runs in `transaction.atomic()`: the outermost
block when called on its own, a savepoint when nested in a caller's
transaction, so that its failure rolls back its own writes and nothing of
the caller's. The idempotent API wrapper (`billing.idempotency`) runs every
effect in a savepoint of its own for exactly that reason, so there a
service's savepoint is a second one around the same writes: two more round
trips (SAVEPOINT, RELEASE) on every request, for nothing. Inside such an
effect `service_atomic()` joins the effect's savepoint instead; anywhere
else it is plain `transaction.atomic()`.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

_in_effect_savepoint: ContextVar[bool] = ContextVar("in_effect_savepoint", default=False)


def service_atomic() -> transaction.Atomic:
    return transaction.atomic(savepoint=not _in_effect_savepoint.get())


@contextmanager
def effect_savepoint():
    """A savepoint for one effect; services called inside it join it rather than make their own.

    Whoever uses this must catch a service's error at this level (or let it
    end the transaction): a service that joined has no savepoint of its own
    to roll back to.
    """
    with transaction.atomic():
        token = _in_effect_savepoint.set(True)
        try:
            yield
        finally:
            _in_effect_savepoint.reset(token)
