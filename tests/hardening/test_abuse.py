"""Hostile input: each gets a clear 4xx with an error code, and changes nothing.

Limits (documented in docs/api.md, "Limits"):

* request body: CREDITLEDGER_MAX_BODY_BYTES (64 KiB) → 413 request_too_large;
* metadata: a JSON object of at most CREDITLEDGER_MAX_METADATA_BYTES (8 KiB)
  and CREDITLEDGER_MAX_METADATA_DEPTH (5) levels → 400;
* free-text fields: 255 characters (description and reason: 1000) → 400;
* amounts: plain decimal strings below CREDITLEDGER_MAX_AMOUNT with at most
  the credit type's scale of places → 400;
* Idempotency-Key: 1-255 printable ASCII characters → 400.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from billing.models import IdempotencyRecord, LedgerEntry, Wallet
from tests.factories import funded_account, service_key

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(60)]


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


LONG = "x" * 10_000
SURROGATE = '"\\ud800"'  # a lone surrogate, legal JSON escape, not encodable as UTF-8

# (name, fields to merge into a valid charge body, expected status, expected code)
BAD_FIELDS = [
    ("long task_id", {"task_id": LONG}, 400, "validation_error"),
    ("long route", {"route": LONG}, 400, "validation_error"),
    ("long description", {"description": LONG}, 400, "validation_error"),
    ("long account", {"account": LONG}, 400, "validation_error"),
    ("long credit_type", {"credit_type": LONG}, 400, "validation_error"),
    ("long amount", {"amount": "1" * 5000}, 400, "validation_error"),
    ("metadata too deep", {"metadata": nested(6)}, 400, "validation_error"),
    ("metadata too large", {"metadata": {"blob": "x" * 9000}}, 400, "validation_error"),
    ("metadata not an object", {"metadata": [1, 2, 3]}, 400, "validation_error"),
    ("metadata with NUL", {"metadata": {"a": "b\x00c"}}, 400, "validation_error"),
    ("NUL in task_id", {"task_id": "a\x00b"}, 400, "validation_error"),
    ("unicode account", {"account": "acct_ünïcødé😀"}, 404, "account_not_found"),
    ("unicode credit_type", {"credit_type": "crédits😀"}, 404, "credit_type_not_found"),
    ("unicode digits amount", {"amount": "١٢"}, 400, "validation_error"),
    ("fullwidth digits amount", {"amount": "１２"}, 400, "validation_error"),
    ("unicode amount", {"amount": "1.5€"}, 400, "validation_error"),
    ("many decimals", {"amount": "1.0000000001"}, 400, "validation_error"),
    ("tiny amount", {"amount": "0.000000000000000000001"}, 400, "validation_error"),
    ("three decimals", {"amount": "1.001"}, 400, "validation_error"),
    ("exponent amount", {"amount": "1e3"}, 400, "validation_error"),
    ("negative amount", {"amount": "-1.00"}, 400, "validation_error"),
    ("number amount", {"amount": 1.5}, 400, "not_a_string"),
    ("NaN amount", {"amount": "NaN"}, 400, "validation_error"),
    ("amount above the maximum", {"amount": "1000000000000"}, 400, "validation_error"),
    ("amount an object", {"amount": {"value": "1"}}, 400, "not_a_string"),
]


@pytest.fixture
def target():
    account = funded_account("100.00")
    _, secret = service_key()
    return account, {"Authorization": f"Bearer {secret}"}


def snapshot(account) -> tuple:
    wallet = Wallet.objects.get(account=account)
    return (
        wallet.balance,
        wallet.held,
        LedgerEntry.objects.filter(account=account).count(),
        IdempotencyRecord.objects.count(),
    )


def valid_body(account) -> dict:
    return {"account": account.public_id, "amount": "1.00", "task_id": "job", "metadata": {"model": "m"}}


@pytest.mark.parametrize("endpoint", ["/api/v1/charges", "/api/v1/grants"])
@pytest.mark.parametrize(("name", "fields", "status", "code"), BAD_FIELDS, ids=[c[0] for c in BAD_FIELDS])
def test_hostile_field_is_refused_and_changes_nothing(api_client, target, endpoint, name, fields, status, code):
    account, headers = target
    before = snapshot(account)
    body = {**valid_body(account), **fields}
    if endpoint.endswith("grants"):  # grants have no route or description, but a reason
        for field in ("route", "description"):
            if field in body:
                body["reason"] = body.pop(field)
    response = api_client.post(endpoint, body, format="json", headers={**headers, "Idempotency-Key": "abuse-1"})
    assert response.status_code == status, response.content[:500]
    assert response.json()["error"]["code"] == code
    assert snapshot(account) == before


def _post_raw(api_client, headers, raw: bytes | str, **extra):
    headers = {"Idempotency-Key": "abuse-raw", **headers}
    return api_client.generic("POST", "/api/v1/charges", raw, content_type="application/json", headers=headers, **extra)


def test_body_over_the_limit_is_413(api_client, target, settings):
    account, headers = target
    before = snapshot(account)
    body = valid_body(account)
    body["description"] = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = _post_raw(api_client, headers, json.dumps(body))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert snapshot(account) == before


def test_megabyte_body_is_413(api_client, target):
    account, headers = target
    before = snapshot(account)
    response = _post_raw(api_client, headers, b"{" + b" " * (1024 * 1024) + b"}")
    assert response.status_code == 413
    assert snapshot(account) == before


def test_deeply_nested_json_is_refused_by_the_parser(api_client, target):
    account, headers = target
    before = snapshot(account)
    response = _post_raw(api_client, headers, "[" * 30_000 + "]" * 30_000)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nesting_too_deep"
    assert snapshot(account) == before


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        b"\xff\xfe{}",
        '{"amount": "1.00", "task_id": ' + SURROGATE + "}",
        '{"amount": "1.00", "metadata": {' + SURROGATE + ": 1}}",
        '{"amount": "1.00", "amount": "2.00"',
        "",
        "null",
        "[]",
        '"a string"',
    ],
    ids=["malformed", "bad-utf8", "surrogate-text", "surrogate-key", "truncated", "empty", "null", "list", "string"],
)
def test_malformed_json_is_a_clear_400(api_client, target, raw):
    account, headers = target
    before = snapshot(account)
    if isinstance(raw, str) and raw.startswith('{"amount"') and raw.endswith("}"):
        raw = raw[:1] + f'"account": "{account.public_id}", ' + raw[1:]
    response = _post_raw(api_client, headers, raw)
    assert response.status_code == 400, response.content[:500]
    assert response.json()["error"]["code"] in {"parse_error", "validation_error", "invalid_encoding"}
    assert snapshot(account) == before


@pytest.mark.parametrize(
    "key",
    ["k" * 256, "ключ", "key with spaces", "tab\tkey"],
    ids=["too-long", "non-ascii", "spaces", "control"],
)
def test_bad_idempotency_key_is_refused(api_client, target, key):
    account, headers = target
    before = snapshot(account)
    response = api_client.post(
        "/api/v1/charges", valid_body(account), format="json", headers={**headers, "Idempotency-Key": key}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert snapshot(account) == before


@pytest.mark.parametrize(
    "authorization",
    ["Bearer " + "k" * 10_000, "Bearer clk_ünï_cødé", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer clk_a_b\x00"],
    ids=["long", "unicode", "basic", "empty", "nul"],
)
def test_hostile_authorization_header_is_401(api_client, target, authorization):
    account, _ = target
    before = snapshot(account)
    response = api_client.post(
        "/api/v1/charges", valid_body(account), format="json", headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert snapshot(account) == before


def test_unicode_in_free_text_is_stored_exactly(api_client, target):
    """Legitimate unicode is not an attack: it is accepted and round-trips."""
    account, headers = target
    text = "Ünïcødé ✓ 日本語 עברית 😀 \u200b"
    body = {
        **valid_body(account),
        "task_id": text,
        "route": text,
        "description": text,
        "metadata": {text: [text, {"ключ": "值"}]},
    }
    response = api_client.post("/api/v1/charges", body, format="json", headers={**headers, "Idempotency-Key": "uni"})
    assert response.status_code == 201, response.json()
    entry = LedgerEntry.objects.get(public_id=response.json()["id"])
    assert entry.task_id == entry.route == entry.description == text
    assert entry.metadata == {text: [text, {"ключ": "值"}]}
    assert entry.amount == Decimal("-1.00")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/accounts/a%00b",
        "/api/v1/accounts/a%00b/balance",
        "/api/v1/accounts/a%00b/transactions",
        "/api/v1/holds/h%00",
        "/api/v1/accounts?external_id=%00",
        "/api/v1/accounts/x/balance?credit_type=a%00",
    ],
)
def test_nul_in_url_is_a_clear_400(api_client, target, path):
    _, headers = target
    response = api_client.get(path, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("path", ["/api/v1/holds/h%00/capture", "/api/v1/charges/c%00/refunds"])
def test_nul_in_url_of_a_write_is_a_clear_400_and_changes_nothing(api_client, target, path):
    account, headers = target
    before = snapshot(account)
    response = api_client.post(path, {"amount": "1.00", "reason": "api_error"}, format="json", headers=headers)
    assert response.status_code == 400
    assert snapshot(account) == before


@pytest.mark.parametrize(
    "query",
    ["created_before=0008-05-28T01:53:05%2B20:39", "created_after=0001-01-01T00:00:00%2B05:00"],
    ids=["offset-beyond-postgres", "before-year-one-in-utc"],
)
def test_out_of_range_datetime_filter_is_not_a_500(api_client, target, query):
    account, headers = target
    response = api_client.get(f"/api/v1/accounts/{account.public_id}/transactions?{query}", headers=headers)
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()["error"]["code"] == "validation_error"
