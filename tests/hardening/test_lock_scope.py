"""No transaction locks rows of two accounts: every money movement stays inside one account.

This is what lets the ledger shard by account (docs/operations.md, "Scaling out"): a
transaction that never touches two accounts never needs two shards. It also
rules out the classic two-wallet deadlock.

Every statement that takes a row lock (`FOR UPDATE`, `FOR NO KEY UPDATE`,
`FOR SHARE`, `FOR KEY SHARE`) is recorded with the id of the transaction it
ran in. Afterwards each one is replayed without the lock to see which
accounts' rows it locked. Every service that moves credits, and the sweeps
that call them in batches, run here on several accounts, in real
transactions; no transaction may have locked rows of more than one account.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from billing import services
from billing.core import posting
from billing.models import CreditLot, Hold, Wallet
from refunds.services import refund_issue
from subscriptions import services as subscription_services
from subscriptions.models import Plan
from tests.factories import AccountFactory, default_credit_type, service_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

LOCKING = re.compile(
    r"\sFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|SHARE|KEY\s+SHARE)\b(\s+OF\s+\w+(\s*,\s*\w+)*)?", re.IGNORECASE
)


class LockRecorder:
    """An execute wrapper noting (transaction id, sql, params) of every row-locking statement."""

    def __init__(self) -> None:
        self.locks: list[tuple[int, str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if LOCKING.search(sql):
            # The underlying psycopg connection: this query is not itself recorded.
            with connection.connection.cursor() as cursor:
                cursor.execute("SELECT txid_current()")
                self.locks.append((cursor.fetchone()[0], sql, params))
        return result

    def accounts_per_transaction(self) -> dict[int, set[int]]:
        wallet_account = dict(Wallet.objects.values_list("pk", "account_id"))
        accounts: dict[int, set[int]] = defaultdict(set)
        for xid, sql, params in self.locks:
            with connection.cursor() as cursor:
                cursor.execute(LOCKING.sub(" ", sql), params)
                columns = [c.name for c in cursor.description]
                rows = cursor.fetchall()
            if "account_id" in columns:
                found = {row[columns.index("account_id")] for row in rows}
            elif "wallet_id" in columns:
                found = {wallet_account[row[columns.index("wallet_id")]] for row in rows}
            else:
                raise AssertionError(f"cannot tell which account this lock is for: {sql}")
            accounts[xid] |= found
        return accounts


def test_no_transaction_locks_rows_of_two_accounts(api_client):
    credit_type = default_credit_type()
    actor = services.Actor.system()
    alice, bob, carol = AccountFactory(), AccountFactory(), AccountFactory()
    _, secret = service_key()
    recorder = LockRecorder()
    soon = timezone.now() + timedelta(seconds=30)

    with connection.execute_wrapper(recorder):
        for account in (alice, bob, carol):
            services.grant_create(account=account, credit_type=credit_type, amount="50", actor=actor)
            # A lot (expiring, prioritised) so charges take the lot path too.
            services.grant_create(
                account=account, credit_type=credit_type, amount="5", actor=actor, expires_at=soon, priority=1
            )
        charge = services.charge_create(account=alice, credit_type=credit_type, amount="7", actor=actor)
        services.adjustment_create(account=bob, credit_type=credit_type, amount="-1", actor=actor, reason="test")
        refund_issue(charge=charge, amount="2", reason="api_error", actor=actor)

        captured = services.hold_create(account=alice, credit_type=credit_type, amount="3", actor=actor)
        services.hold_capture(hold=captured, amount="4", actor=actor)
        released = services.hold_create(account=bob, credit_type=credit_type, amount="3", actor=actor)
        services.hold_release(hold=released, actor=actor)
        for account in (alice, bob, carol):
            services.hold_create(
                account=account, credit_type=credit_type, amount="1", actor=actor, on_expiry="capture", expires_in=1
            )
        later = timezone.now() + timedelta(hours=1)
        assert services.holds_expire_due(now=later) == 3
        assert services.grants_expire_due(now=later) >= 1

        plan = Plan.objects.create(
            code="lock-test", name="Lock test", credit_type=credit_type, monthly_allowance=Decimal("10")
        )
        subscription = subscription_services.subscription_create(account=carol, plan=plan, actor=actor)
        subscription_services.subscriptions_renew_due(now=subscription.current_period_end + timedelta(seconds=1))
        subscription_services.subscription_status_set(subscription=subscription, status="canceled", actor=actor)

        # Through the API too: the idempotency wrapper joins the same transaction.
        headers = {"Authorization": f"Bearer {secret}"}
        for n, account in enumerate((alice, bob, carol)):
            response = api_client.post(
                "/api/v1/charges",
                {"account": account.public_id, "amount": "1.00"},
                format="json",
                headers={**headers, "Idempotency-Key": f"lock-scope-{n}"},
            )
            assert response.status_code == 201, response.json()

    per_transaction = recorder.accounts_per_transaction()
    assert len(per_transaction) >= 20, "too few locking transactions seen: is the recorder working?"
    crossing = {xid: accounts for xid, accounts in per_transaction.items() if len(accounts) > 1}
    assert not crossing, f"transactions locking rows of several accounts: {crossing}"
    assert not Hold.objects.filter(status="pending", expires_at__lte=later).exists()
    assert CreditLot.objects.filter(expires_at=soon, remaining=0).exists()


def test_the_recorder_sees_a_transaction_that_locks_two_accounts():
    """The check above would fail for a service that moved credits between two accounts."""
    from django.db import transaction

    credit_type = default_credit_type()
    alice, bob = AccountFactory(), AccountFactory()
    for account in (alice, bob):
        services.grant_create(account=account, credit_type=credit_type, amount="1", actor=services.Actor.system())
    recorder = LockRecorder()
    with connection.execute_wrapper(recorder), transaction.atomic():
        for account in (alice, bob):
            with posting(account=account, credit_type=credit_type):
                pass
    assert [len(accounts) for accounts in recorder.accounts_per_transaction().values()] == [2]
