"""Celery tasks for payments: thin and idempotent (each may run twice)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from payments.models import Purchase, StripeEvent
from payments.services import auto_recharge, events

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(name="payments.tasks.process_stripe_event", **TASK_OPTIONS)
def process_stripe_event(event_id: int) -> str:
    return events.stripe_event_process(event_id=event_id).status


@shared_task(name="payments.tasks.stripe_events_sweep", **TASK_OPTIONS)
def stripe_events_sweep() -> int:
    """Process stored events still `received` a minute on (their after-commit enqueue was lost or they
    wait for another event), and retry failed ones whose `retry_at` has come (exponential backoff)."""
    now = timezone.now()
    waiting = StripeEvent.objects.filter(
        status=StripeEvent.Status.RECEIVED, received_at__lte=now - timedelta(minutes=1)
    ).values_list("pk", flat=True)[:500]
    retries = (
        StripeEvent.objects.filter(status=StripeEvent.Status.FAILED, retry_at__lte=now)
        .order_by("retry_at")
        .values_list("pk", flat=True)[:500]
    )
    due = [*waiting, *retries]
    for event_id in due:
        events.stripe_event_process(event_id=event_id, only_if_due=True)
    auto_recharge.auto_recharges_stalled_retry()
    return len(due)


@shared_task(name="payments.tasks.auto_recharge_charge", **TASK_OPTIONS)
def auto_recharge_charge(purchase_id: int) -> str:
    purchase = Purchase.objects.get(pk=purchase_id)
    return auto_recharge.auto_recharge_charge(purchase=purchase).status
