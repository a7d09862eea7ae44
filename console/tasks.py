"""Celery tasks for the console: thin wrappers over its services."""

from __future__ import annotations

from celery import shared_task

from console.services import ledger_rollup_refresh


@shared_task(name="console.tasks.rollup_ledger", acks_late=True, reject_on_worker_lost=True)
def rollup_ledger() -> dict:
    """Refresh the dashboard's per-day totals (every minute; idempotent: it recomputes whole days)."""
    refreshed = ledger_rollup_refresh()
    return {"from": refreshed.first_day.isoformat(), "ledger_days": refreshed.ledger_days}
