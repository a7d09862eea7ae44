from celery import shared_task

from webhooks.services import deliveries_sweep as _deliveries_sweep
from webhooks.services import delivery_attempt, fanouts_dispatch


@shared_task
def webhook_deliver(delivery_id: int) -> bool | None:
    """One attempt of one delivery, if it is due (idempotent: a claimed or finished delivery is left alone)."""
    return delivery_attempt(delivery_id=delivery_id)


@shared_task
def deliveries_sweep() -> int:
    """Attempts that are due but were never enqueued (or whose worker died)."""
    return _deliveries_sweep()


@shared_task
def webhook_fanouts_dispatch() -> int:
    """The fan-outs (events to deliveries) that are due; idempotent (the outbox claims each message)."""
    return fanouts_dispatch()
