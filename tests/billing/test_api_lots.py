"""Grants with an expiry or a priority through the API, and what the balance shows will expire."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CreditLot
from tests.factories import AccountFactory, service_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def post_grant(service, account, amount, **extra):
    body = {"account": account.public_id, "amount": amount, **extra}
    return service.post("/api/v1/grants", body, format="json")


def test_grant_with_expiry_and_priority_creates_a_lot(service):
    account = AccountFactory()
    expires_at = timezone.now() + timedelta(days=7)
    response = post_grant(service, account, "5.00", expires_at=expires_at.isoformat(), priority=3)
    assert response.status_code == 201, response.content
    lot = CreditLot.objects.get(wallet__account=account)
    assert lot.priority == 3 and lot.expires_at == expires_at and lot.remaining == Decimal("5.00")


def test_grant_with_a_past_expiry_is_a_400(service):
    account = AccountFactory()
    response = post_grant(service, account, "5.00", expires_at=(timezone.now() - timedelta(minutes=1)).isoformat())
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "expires_at"


def test_grant_with_an_out_of_range_priority_is_a_400(service):
    response = post_grant(service, AccountFactory(), "5.00", priority=5000)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "priority"


def test_balance_shows_what_expires_when(service):
    account = AccountFactory()
    soon = timezone.now() + timedelta(days=1)
    later = timezone.now() + timedelta(days=30)
    post_grant(service, account, "2.00", expires_at=soon.isoformat())
    post_grant(service, account, "3.00", expires_at=soon.isoformat())
    post_grant(service, account, "4.00", expires_at=later.isoformat())
    post_grant(service, account, "1.00")
    body = service.get(f"/api/v1/accounts/{account.public_id}/balance?refresh=true").json()
    (wallet,) = body["balances"]
    assert wallet["balance"] == "10.00"
    assert [item["amount"] for item in wallet["expiring"]] == ["5.00", "4.00"]
    assert wallet["expiring"][0]["expires_at"].startswith(soon.strftime("%Y-%m-%dT%H:%M"))


def test_balance_of_an_account_without_lots_lists_nothing_expiring(service):
    account = AccountFactory()
    post_grant(service, account, "1.00")
    body = service.get(f"/api/v1/accounts/{account.public_id}/balance").json()
    assert body["balances"][0]["expiring"] == []
