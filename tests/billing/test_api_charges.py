"""POST /api/v1/charges and /api/v1/grants, balances and history."""

from decimal import Decimal

import pytest

from billing.models import LedgerEntry, Wallet
from tests.factories import AccountFactory, CreditTypeFactory, funded_account, service_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def test_charge_returns_entry_and_balance_after(service):
    account = funded_account("10.00")
    response = service.post(
        "/api/v1/charges",
        {
            "account": account.public_id,
            "amount": "2.50",
            "task_id": "task-9",
            "route": "/api/chat",
            "metadata": {"m": 1},
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "charge" and body["amount"] == "-2.50" and body["balance_after"] == "7.50"
    assert body["task_id"] == "task-9" and body["route"] == "/api/chat" and body["metadata"] == {"m": 1}
    assert body["credit_type"] == "credits" and body["id"].startswith("txn_")
    entry = LedgerEntry.objects.get(public_id=body["id"])
    assert entry.actor_api_key is not None


def test_charge_beyond_balance_is_402_with_rounded_available(service):
    account = funded_account("1.00")
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": "1.01"}, format="json")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert response.json()["error"]["available"] == "1.00"
    assert Wallet.objects.get(account=account).balance == Decimal("1.00")


def test_grant_needs_a_service_key(api_client):
    from tests.factories import account_key

    account = AccountFactory()
    _, secret = account_key(account)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = api_client.post("/api/v1/grants", {"account": account.public_id, "amount": "5"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_grant_adds_credits_with_reason(service):
    account = AccountFactory()
    response = service.post(
        "/api/v1/grants", {"account": account.public_id, "amount": "5.00", "reason": "welcome"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["kind"] == "grant" and response.json()["description"] == "welcome"
    assert Wallet.objects.get(account=account).balance == Decimal("5.00")


def test_credit_type_defaults_and_can_be_chosen(service):
    account = AccountFactory()
    CreditTypeFactory(code="reading", scale=0)
    service.post(
        "/api/v1/grants", {"account": account.public_id, "amount": "3", "credit_type": "reading"}, format="json"
    )
    service.post("/api/v1/grants", {"account": account.public_id, "amount": "1.25"}, format="json")
    body = service.get(f"/api/v1/accounts/{account.public_id}/balance").json()
    balances = {b["credit_type"]: b for b in body["balances"]}
    assert balances["reading"]["balance"] == "3" and balances["credits"]["available"] == "1.25"


def test_balance_of_new_account_shows_zero_default(service):
    account = AccountFactory()
    body = service.get(f"/api/v1/accounts/{account.public_id}/balance").json()
    assert body["balances"][0]["balance"] == "0.00"


def test_transactions_are_cursor_paginated_and_filterable(service):
    account = funded_account("100.00")
    for i in range(5):
        service.post(
            "/api/v1/charges", {"account": account.public_id, "amount": "1", "task_id": f"t{i}"}, format="json"
        )
    page = service.get(f"/api/v1/accounts/{account.public_id}/transactions?limit=2").json()
    assert page["object"] == "list" and len(page["data"]) == 2 and page["has_more"] is True
    assert page["data"][0]["task_id"] == "t4"
    url = f"/api/v1/accounts/{account.public_id}/transactions?limit=2&cursor={page['next_cursor']}"
    second = service.get(url).json()
    assert [e["task_id"] for e in second["data"]] == ["t2", "t1"]
    grants = service.get(f"/api/v1/accounts/{account.public_id}/transactions?kind=grant").json()
    assert [e["kind"] for e in grants["data"]] == ["grant"]
    by_task = service.get(f"/api/v1/accounts/{account.public_id}/transactions?task_id=t3").json()
    assert [e["task_id"] for e in by_task["data"]] == ["t3"]
    future = service.get(f"/api/v1/accounts/{account.public_id}/transactions?created_after=2999-01-01T00:00:00Z").json()
    assert future["data"] == []


def test_bad_filter_is_400(service):
    account = AccountFactory()
    response = service.get(f"/api/v1/accounts/{account.public_id}/transactions?created_after=yesterday")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
