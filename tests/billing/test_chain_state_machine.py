"""After any random sequence of ledger operations, the full reconciliation verifies: exit 0.

The state machine of tests/hardening/test_stateful.py (grants, charges,
adjustments, holds captured, released and expired, refunds) drives the
services; at the end of each sequence `manage.py reconcile` checks every
hash, link, balance_after, chain head, refund log and stored checkpoint, and
must find nothing.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.hardening.test_stateful import LedgerMachine


class ChainedLedgerMachine(LedgerMachine):
    def teardown(self) -> None:
        out = StringIO()
        try:
            call_command("reconcile", stdout=out)
        except CommandError as error:  # pragma: no cover - the failure message
            raise AssertionError(f"reconcile exited {error.returncode}:\n{out.getvalue()}") from error


@pytest.mark.django_db
@pytest.mark.timeout(180)
def test_a_ledger_written_by_random_operations_verifies_clean():
    run_state_machine_as_test(
        ChainedLedgerMachine,
        settings=settings(
            max_examples=5,
            stateful_step_count=15,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
