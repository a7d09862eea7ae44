"""The beat schedule names real tasks, and every task survives a lost worker."""

from __future__ import annotations

from django.conf import settings

from config.celery import app


def registered_tasks() -> dict:
    app.loader.import_default_modules()  # autodiscovery, as a worker does at start-up
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_scheduled_task_exists():
    tasks = registered_tasks()
    for entry, schedule in settings.CELERY_BEAT_SCHEDULE.items():
        assert schedule["task"] in tasks, f"beat entry {entry!r} names an unknown task"


def test_the_schedule_covers_the_operations_jobs():
    scheduled = {schedule["task"] for schedule in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "billing.tasks.expire_holds",
        "billing.tasks.reconcile",
        "billing.tasks.outbox_sweep",
        "billing.tasks.purge_idempotency_records",
        "subscriptions.tasks.renew_allowances",
    } <= scheduled


def test_tasks_ack_late_and_are_requeued_when_a_worker_dies():
    for name, task in registered_tasks().items():
        assert task.acks_late, name
        assert task.reject_on_worker_lost, name
