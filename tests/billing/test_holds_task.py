"""The Celery beat task that expires holds: thin, idempotent, safe to run twice."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Hold, LedgerEntry, Wallet
from billing.tasks import expire_holds
from tests.factories import funded_account, hold_for


@pytest.mark.django_db
def test_expire_holds_task_applies_on_expiry_once_however_often_it_runs():
    account = funded_account("10.00")
    hold = hold_for(account, "4.00", on_expiry="capture")
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_holds.apply().get() == 1
    assert expire_holds.apply().get() == 0
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 1
    assert Wallet.objects.get(account=account).balance == Decimal("6.00")


def test_expire_holds_task_is_acks_late():
    assert expire_holds.acks_late is True
