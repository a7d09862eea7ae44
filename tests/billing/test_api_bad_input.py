"""Bad input: a 4xx with a machine-readable code, and no change anywhere."""

from decimal import Decimal

import pytest

from billing.models import IdempotencyRecord, LedgerEntry, Wallet
from tests.factories import funded_account, service_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    account = funded_account("50.00")
    return api_client, account


def snapshot():
    return (
        list(Wallet.objects.values_list("id", "balance", "held")),
        LedgerEntry.objects.count(),
        IdempotencyRecord.objects.count(),
    )


@pytest.mark.parametrize(
    ("amount", "field_code"),
    [
        ("-1.00", "invalid_format"),
        ("0", "not_positive"),
        ("0.00", "not_positive"),
        ("NaN", "invalid_format"),
        ("Infinity", "invalid_format"),
        ("1e400", "invalid_format"),
        ("1.001", "too_many_decimals"),
        (1.5, "not_a_string"),
        (2, "not_a_string"),
        ("abc", "invalid_format"),
        ("1234567890123456789012345678901234567890", "invalid_format"),
        ("12345678901234567890", "too_large"),
        (" 1.00", "invalid_format"),
        ("", "invalid_format"),
        (None, "null"),
        ([], "not_a_string"),
    ],
)
def test_bad_amounts_are_refused(setup, amount, field_code):
    client, account = setup
    before = snapshot()
    response = client.post(
        "/api/v1/charges",
        {"account": account.public_id, "amount": amount},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"bad-{field_code}",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    # A JSON number (or array) for an amount breaks the contract's types: that is the error's own code.
    assert error["code"] == ("not_a_string" if field_code == "not_a_string" else "validation_error")
    assert error["param"] == "amount"
    assert error["fields"]["amount"][0]["code"] == field_code
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"account": "acc_doesnotexist", "amount": "1"}, 404, "account_not_found"),
        ({"amount": "1", "credit_type": "nope"}, 404, "credit_type_not_found"),
        ({}, 400, "validation_error"),
        ({"account": None, "amount": "1"}, 400, "validation_error"),
        ({"amount": "1"}, 400, "validation_error"),
        ({"amount": "1", "metadata": "not-an-object"}, 400, "validation_error"),
        ({"amount": "1", "task_id": "x" * 256}, 400, "validation_error"),
    ],
)
def test_bad_fields_are_refused(setup, body, status, code):
    client, account = setup
    if "credit_type" in body or "metadata" in body or "task_id" in body:
        body = {"account": account.public_id, **body}
    before = snapshot()
    response = client.post("/api/v1/charges", body, format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert snapshot() == before


def test_suspended_account_is_refused(setup):
    client, _ = setup
    account = funded_account("5.00", status="suspended")
    before = snapshot()
    response = client.post("/api/v1/charges", {"account": account.public_id, "amount": "1"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "account_suspended"
    assert snapshot() == before


def test_malformed_json_is_a_parse_error(setup):
    client, _ = setup
    before = snapshot()
    response = client.post("/api/v1/charges", '{"amount": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert snapshot() == before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_parse_errors(setup, literal):
    client, account = setup
    response = client.post(
        "/api/v1/charges", f'{{"account": "{account.public_id}", "amount": {literal}}}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_wrong_content_type_is_415(setup):
    client, account = setup
    before = snapshot()
    response = client.post(
        "/api/v1/charges", f"account={account.public_id}&amount=1", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert snapshot() == before


def test_json_array_body_is_refused(setup):
    client, _ = setup
    response = client.post("/api/v1/charges", "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_unknown_route_and_wrong_method_have_error_bodies(setup):
    client, _ = setup
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.get("/api/v1/charges")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_balance_unchanged_after_all_refusals(setup):
    _, account = setup
    assert Wallet.objects.get(account=account).balance == Decimal("50.00")
