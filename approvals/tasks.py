"""Celery tasks for approvals: thin and idempotent."""

from __future__ import annotations

from celery import shared_task

from approvals.services import approvals_expire_due


@shared_task(name="approvals.tasks.expire_approvals", acks_late=True, reject_on_worker_lost=True)
def expire_approvals() -> int:
    """Mark pending requests past their expiry as expired (approving them is refused anyway)."""
    return approvals_expire_due()
