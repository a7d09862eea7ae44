"""The reconciliation runs list's "Run now": queue the task, land on the run it made."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection

from billing.models import ReconciliationRun, Wallet
from config.celery import app as celery_app
from tests.factories import UserFactory, funded_account

pytestmark = pytest.mark.django_db

LIST = "/admin/billing/reconciliationrun/"


@pytest.fixture
def eager():
    """CELERY_TASK_ALWAYS_EAGER for this test: the task runs inside the request."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def test_run_now_queues_the_task_and_shows_the_run_with_its_drift(admin_client, eager):
    account = funded_account("10.00")
    wallet = Wallet.objects.get(account=account)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_wallet SET balance = 1234.5 WHERE id = %s", [wallet.pk])
    assert b"run-now-button" in admin_client.get(LIST).content
    response = admin_client.post(LIST + "run-now/", follow=True)
    run = ReconciliationRun.objects.get()
    assert run.trigger.startswith("admin ") and run.status == ReconciliationRun.Status.DRIFT
    assert response.redirect_chain[-1][0] == f"{LIST}{run.pk}/change/"
    page = response.content.decode()
    assert "Drift found" in page
    assert account.external_id in page or account.public_id in page
    assert "1,234.50" in page and "10.00" in page  # actual and expected, at the credit type's scale


def test_run_now_needs_the_add_permission(client, eager):
    staff = UserFactory()
    staff.user_permissions.add(Permission.objects.get(codename="view_reconciliationrun"))
    client.force_login(staff)
    assert b"run-now-button" not in client.get(LIST).content
    assert client.post(LIST + "run-now/").status_code == 403
    assert not ReconciliationRun.objects.exists()


def test_the_page_waits_for_a_run_not_yet_started(admin_client):
    page = admin_client.get(LIST + "run-now/0123456789abcdef/")
    assert page.status_code == 200 and b'http-equiv="refresh"' in page.content
