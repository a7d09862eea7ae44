from celery import shared_task

from events.services import events_purge_expired


@shared_task
def purge_events() -> int:
    """Delete events past the retention period (idempotent)."""
    return events_purge_expired()
