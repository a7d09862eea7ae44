"""Celery tasks for the ledger: thin, idempotent wrappers over services.

Every task here may run twice (acks_late re-delivers a task whose worker
died) and must give the same outcome: the services they call claim their
work with conditional updates or only read.
"""

from __future__ import annotations

from celery import shared_task

from billing.idempotency import idempotency_records_purge
from billing.outbox import outbox_dispatch_pending, outbox_message_dispatch
from billing.reconciliation import reconciliation_run

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="billing.tasks.reconcile", **TASK_OPTIONS)
def reconcile(trigger: str = "task") -> dict:
    """Nightly reconciliation (and the admin's "Run now", which names its run by `trigger`).

    Drift is reported (outbox alert → Sentry), not raised.
    """
    run = reconciliation_run(trigger=trigger)
    if run.alert_message is not None:
        outbox_message_dispatch(message_id=run.alert_message.pk)
    return {"run": run.pk, "status": run.status, "discrepancies": run.discrepancy_count}


@shared_task(name="billing.tasks.purge_idempotency_records", **TASK_OPTIONS)
def purge_idempotency_records() -> int:
    return idempotency_records_purge()


@shared_task(name="billing.tasks.outbox_dispatch", **TASK_OPTIONS)
def outbox_dispatch(message_id: int) -> bool:
    """Dispatch one outbox message right after the transaction that wrote it committed."""
    return outbox_message_dispatch(message_id=message_id)


@shared_task(name="billing.tasks.outbox_sweep", **TASK_OPTIONS)
def outbox_sweep() -> int:
    """Dispatch whatever is due: messages whose after-commit enqueue was lost, and retries."""
    return outbox_dispatch_pending()


@shared_task(name="billing.tasks.expire_holds", **TASK_OPTIONS)
def expire_holds() -> int:
    """Apply `on_expiry` to every pending hold past its expiry; safe to run twice or in parallel."""
    from billing.services import holds_expire_due

    return holds_expire_due()


@shared_task(name="billing.tasks.expire_grants", **TASK_OPTIONS)
def expire_grants() -> int:
    """Write the expiry entries of grant lots past their expiry; safe to run twice or in parallel."""
    from billing.services import grants_expire_due

    return grants_expire_due()
