from decimal import Decimal

import pytest

pytestmark = pytest.mark.django_db


def test_charge_round_trip(client, account):
    entry = client.charges.create(account.id, amount=Decimal("2.50"), route="/api/generate")
    assert entry.amount == Decimal("-2.50")
    assert entry.balance_after == Decimal("97.50")
