"""Migration 0009 fills the account of existing grant lots and daily usage from their wallet."""

from datetime import date, timedelta

import pytest
from django.db import connection

from billing.models import CreditLot, DailyUsage
from billing.services import Actor, grant_create
from tests.factories import default_credit_type, funded_account
from tests.migrations import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("billing", "0008_idempotency_key_per_account")]
AFTER = [("billing", "0009_lots_and_daily_usage_keyed_by_account")]


def test_existing_lots_and_usage_get_their_wallets_account():
    account = funded_account("10.00")
    grant = grant_create(
        account=account,
        credit_type=default_credit_type(),
        amount="5",
        expires_at=None,
        priority=3,
        actor=Actor.system(),
    )
    wallet_id = CreditLot.objects.get(entry=grant).wallet_id
    migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO billing_dailyusage (wallet_id, day, used) VALUES (%s, %s, 1)",
                [wallet_id, date.today() - timedelta(days=1)],
            )
    finally:
        migrate(AFTER)
        migrate_to_latest()
    assert CreditLot.objects.get(entry=grant).account_id == account.pk
    assert DailyUsage.objects.get(wallet_id=wallet_id).account_id == account.pk
