from celery import shared_task

from webhooks.services import deliveries_sweep as _deliveries_sweep
from webhooks.services import delivery_attempt


@shared_task
def webhook_deliver(delivery_id: int) -> bool | None:
    """One attempt of one delivery, if it is due (idempotent: a claimed or finished delivery is left alone)."""
    return delivery_attempt(delivery_id=delivery_id)


@shared_task
def deliveries_sweep() -> int:
    """Attempts that are due but were never enqueued (or whose worker died)."""
    return _deliveries_sweep()
