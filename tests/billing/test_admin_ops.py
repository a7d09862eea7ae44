"""Admin for reconciliation runs and the outbox: read-only records, one retry action."""

from __future__ import annotations

import pytest
from django.db import connection

from billing.models import OutboxMessage, Wallet
from billing.outbox import outbox_enqueue
from billing.reconciliation import reconciliation_run
from tests.factories import UserFactory, funded_account

pytestmark = pytest.mark.django_db


def test_a_run_with_its_discrepancies_is_shown_and_read_only(admin_client):
    account = funded_account("10.00")
    wallet = Wallet.objects.get(account=account)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_wallet SET balance = 12 WHERE id = %s", [wallet.pk])
    run = reconciliation_run()
    listing = admin_client.get("/admin/billing/reconciliationrun/")
    page = admin_client.get(f"/admin/billing/reconciliationrun/{run.pk}/change/")
    assert listing.status_code == 200 and page.status_code == 200
    assert b"balance_mismatch" in page.content or b"Balance differs" in page.content
    assert b'name="_save"' not in page.content
    assert admin_client.get("/admin/billing/reconciliationdiscrepancy/").status_code == 200


def test_retry_now_makes_a_failed_message_due_again(admin_client):
    message = outbox_enqueue(topic="alert.admin_test", payload={"message": "x"})
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed", attempts=10)
    response = admin_client.post(
        "/admin/billing/outboxmessage/", {"action": "retry_now", "_selected_action": [message.pk]}, follow=True
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "pending"


def test_retry_needs_the_change_permission(client):
    staff = UserFactory()  # staff without permissions
    client.force_login(staff)
    message = outbox_enqueue(topic="alert.admin_test", payload={"message": "x"})
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed")
    client.post("/admin/billing/outboxmessage/", {"action": "retry_now", "_selected_action": [message.pk]})
    message.refresh_from_db()
    assert message.status == "failed"


def test_a_run_page_shows_its_checkpoint_and_names_a_broken_entry(admin_client):
    account = funded_account("20.00")
    entry = account.ledger_entries.get()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE billing_ledgerentry SET balance_after = 21 WHERE id = %s", [entry.pk])
    run = reconciliation_run()
    page = admin_client.get(f"/admin/billing/reconciliationrun/{run.pk}/change/").content.decode()
    assert run.checkpoint.digest in page and "1 wallets, 1 entries" in page
    assert "chain_broken" in page or "Entry hash or link does not verify" in page
    assert entry.public_id in page
