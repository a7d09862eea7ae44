"""Authentication, the accounts API, and isolation between accounts."""

import pytest

from accounts.models import ApiKey
from accounts.services import api_key_revoke
from billing.models import LedgerEntry
from tests.client import KeyedAPIClient as APIClient
from tests.factories import AccountFactory, account_key, funded_account, service_key

pytestmark = pytest.mark.django_db


def client_for(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer clk_nope_nope", "Basic abc", "Bearer " + "x" * 300])
def test_missing_or_unknown_key_is_401(api_client, header):
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/accounts")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}
    assert response["WWW-Authenticate"] == "Bearer"


def test_revoked_key_is_401():
    api_key, secret = service_key()
    api_key_revoke(api_key=api_key)
    response = client_for(secret).get("/api/v1/accounts")
    assert response.status_code == 401


def test_secret_is_stored_only_as_a_hash():
    api_key, secret = service_key()
    stored = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert secret not in str(stored)
    assert secret.startswith(stored["prefix"] + "_")


def test_tampered_secret_with_valid_prefix_is_401():
    _, secret = service_key()
    response = client_for(secret[:-1] + ("A" if secret[-1] != "A" else "B")).get("/api/v1/accounts")
    assert response.status_code == 401


def test_service_key_creates_and_finds_accounts():
    _, secret = service_key()
    client = client_for(secret)
    created = client.post(
        "/api/v1/accounts", {"external_id": "u-42", "name": "Ada", "email": "ada@example.com"}, format="json"
    )
    assert created.status_code == 201 and created.json()["id"].startswith("acc_")
    found = client.get("/api/v1/accounts?external_id=u-42").json()["data"]
    assert [a["id"] for a in found] == [created.json()["id"]]
    detail = client.get(f"/api/v1/accounts/{created.json()['id']}").json()
    assert detail["external_id"] == "u-42" and detail["status"] == "active"


def test_duplicate_external_id_is_409():
    _, secret = service_key()
    AccountFactory(external_id="dup")
    response = client_for(secret).post("/api/v1/accounts", {"external_id": "dup"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "account_exists"


def test_account_key_cannot_create_accounts():
    _, secret = account_key(AccountFactory())
    response = client_for(secret).post("/api/v1/accounts", {"external_id": "x"}, format="json")
    assert response.status_code == 403


def test_account_key_sees_only_its_account():
    mine, theirs = AccountFactory(), AccountFactory()
    _, secret = account_key(mine)
    client = client_for(secret)
    assert [a["id"] for a in client.get("/api/v1/accounts").json()["data"]] == [mine.public_id]
    assert client.get(f"/api/v1/accounts?external_id={theirs.external_id}").json()["data"] == []
    for path in ["", "/balance", "/transactions"]:
        response = client.get(f"/api/v1/accounts/{theirs.public_id}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "account_not_found"


def test_account_key_charging_another_account_gets_404_and_charges_nothing():
    mine, theirs = funded_account("10.00"), funded_account("10.00")
    _, secret = account_key(mine)
    response = client_for(secret).post(
        "/api/v1/charges", {"account": theirs.public_id, "amount": "1.00"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "account_not_found"
    assert LedgerEntry.objects.filter(account=theirs, kind="charge").count() == 0


def test_account_key_charges_its_own_account_by_default():
    mine = funded_account("10.00")
    _, secret = account_key(mine)
    response = client_for(secret).post("/api/v1/charges", {"amount": "1.00"}, format="json")
    assert response.status_code == 201 and response.json()["account"] == mine.public_id


def test_schema_and_docs_are_served(api_client):
    assert api_client.get("/api/schema/").status_code == 200
    assert api_client.get("/api/docs/").status_code == 200
