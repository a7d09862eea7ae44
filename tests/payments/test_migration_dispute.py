"""payments 0003 gives purchases written before it their dispute fields, read from their status and hold."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from payments.models import Purchase
from tests.payments.helpers import deliver, dispute, paid_purchase

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def test_open_lost_and_won_disputes_are_recovered_from_the_old_status():
    open_, lost, won = paid_purchase(), paid_purchase(), paid_purchase()
    for purchase, dispute_id in ((open_, "dp_open"), (lost, "dp_lost"), (won, "dp_won")):
        deliver(dispute(purchase, "charge.dispute.created", "needs_response", dispute_id=dispute_id))
    deliver(dispute(lost, "charge.dispute.closed", "lost", dispute_id="dp_lost"))
    deliver(dispute(won, "charge.dispute.closed", "won", dispute_id="dp_won"))
    migrate([("payments", "0002_stripe_event_retry")])  # the columns are gone, as before 0003
    migrate(None)
    found = {p.pk: (p.dispute_id, p.dispute_status, p.status) for p in Purchase.objects.all()}
    assert found == {
        open_.pk: ("dp_open", "open", "disputed"),
        lost.pk: ("dp_lost", "lost", "refunded"),
        won.pk: ("dp_won", "won", "paid"),
    }
