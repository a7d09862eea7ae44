"""Celery tasks for subscriptions: thin, idempotent wrappers over services (see billing/tasks.py)."""

from __future__ import annotations

from celery import shared_task

from subscriptions.services import subscriptions_renew_due

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="subscriptions.tasks.renew_allowances", **TASK_OPTIONS)
def renew_allowances() -> int:
    """Grant the allowance of every subscription period that has begun; at most once per period."""
    return subscriptions_renew_due()
