"""A real Celery worker, started as a subprocess against the test database and Redis.

The worker gets this run's broker (CELERY_BROKER_URL / REDIS_URL) and the
pytest-django test database through DATABASE_URL; tests commit
(transaction=True) so the worker sees their rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.db import transaction

from billing.models import OutboxMessage, ReconciliationRun
from billing.outbox import outbox_enqueue
from billing.tasks import reconcile
from tests.factories import funded_account
from tests.processes import celery_worker, child_database_url

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_S = 60


def wait_for(condition: Callable[[], bool], log_path: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    with open(log_path) as log:
        pytest.fail(f"worker did not do it within {WAIT_S}s; its log:\n{log.read()[-4000:]}")


@pytest.fixture
def worker():
    with celery_worker("test", database_url=child_database_url()) as log_path:
        yield log_path


def test_an_outbox_message_is_dispatched_by_a_worker_after_commit(worker):
    with transaction.atomic():
        message = outbox_enqueue(topic="alert.worker_test", payload={"message": "hello from the test"})
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).status == "dispatched", worker)
    assert OutboxMessage.objects.get(pk=message.pk).attempts == 1


def test_the_reconcile_task_runs_in_a_worker(worker):
    funded_account("10.00")
    reconcile.delay()
    wait_for(lambda: ReconciliationRun.objects.filter(trigger="task", status="clean").exists(), worker)
    assert ReconciliationRun.objects.get().wallets_checked == 1
