"""The strict contract (issue 12): every request the API once answered with a 500 or quietly
reinterpreted now gets a 400 (or 415) with its own code and `param`, and changes nothing."""

from __future__ import annotations

import base64
import json

import pytest

from billing.models import IdempotencyRecord, LedgerEntry, Wallet
from refunds.models import RefundLog
from tests.factories import charge_for, funded_account, hold_for, service_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


@pytest.fixture
def account():
    return funded_account("100.00")


def snapshot():
    return (
        list(Wallet.objects.order_by("id").values_list("id", "balance", "held")),
        LedgerEntry.objects.count(),
        RefundLog.objects.count(),
        IdempotencyRecord.objects.count(),
    )


def post_raw(client, path: str, raw: str | bytes, *, content_type="application/json", key="strict-1"):
    headers = {"Idempotency-Key": key} if key else {}
    return client.generic("POST", path, raw, content_type=content_type, headers=headers)


def money_posts(account) -> list[tuple[str, dict]]:
    """Every money-moving POST with a valid body."""
    hold = hold_for(account, "5.00")
    other = hold_for(account, "5.00")
    charge = charge_for(account, "1.00")
    return [
        ("/api/v1/charges", {"account": account.public_id, "amount": "1.00"}),
        ("/api/v1/grants", {"account": account.public_id, "amount": "1.00"}),
        ("/api/v1/holds", {"account": account.public_id, "amount": "1.00"}),
        (f"/api/v1/holds/{hold.public_id}/capture", {"amount": "1.00"}),
        (f"/api/v1/holds/{other.public_id}/release", {}),
        (f"/api/v1/charges/{charge.public_id}/refunds", {"reason": "timeout"}),
    ]


def error_of(response) -> dict:
    return response.json()["error"]


# --- the 500s of the issue, now 400s ---------------------------------------------


def test_an_overflowing_number_in_metadata_is_a_400_on_every_money_post(service, account):
    for path, body in money_posts(account):
        before = snapshot()
        raw = json.dumps({**body, "metadata": {"x": 1}}).replace('{"x": 1}', '{"x": 1e999}')
        if path.endswith("/release"):
            raw = '{"reason": "done", "ignored": 1e999}'
        response = post_raw(service, path, raw)
        assert response.status_code == 400, (path, response.content)
        assert error_of(response)["code"] == "number_out_of_range", path
        assert snapshot() == before, path


@pytest.mark.parametrize("field", ["metadata", "usage"])
def test_structures_a_thousand_levels_deep_are_refused_by_the_parser(service, account, field):
    before = snapshot()
    deep = '{"a": ' * 1000 + "1" + "}" * 1000
    body = {"account": account.public_id, "key": "model-x"} if field == "usage" else {"amount": "1.00"}
    raw = json.dumps({**body, "account": account.public_id, field: "DEEP"}).replace('"DEEP"', deep)
    response = post_raw(service, "/api/v1/charges", raw)
    assert response.status_code == 400
    assert error_of(response)["code"] == "nesting_too_deep"
    assert snapshot() == before


@pytest.mark.parametrize("listing", ["transactions", "holds", "refunds"])
@pytest.mark.parametrize(
    "cursor",
    [
        base64.b64encode(b"p=abc").decode(),
        base64.b64encode(b"o=-5").decode(),
        base64.b64encode(b"r=x").decode(),
        "not base64!",
        "%FF%FE",
    ],
)
def test_a_tampered_cursor_is_400_invalid_cursor(service, account, listing, cursor):
    response = service.get(f"/api/v1/accounts/{account.public_id}/{listing}?cursor={cursor}")
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "invalid_cursor" and error_of(response)["param"] == "cursor"


# --- strict by default ---------------------------------------------------------------


def test_every_money_post_requires_an_idempotency_key(service, account):
    for path, body in money_posts(account):
        before = snapshot()
        response = service.post(path, body, format="json", idempotency_key=None)
        assert response.status_code == 400, path
        assert error_of(response)["code"] == "idempotency_key_required", path
        assert snapshot() == before


@pytest.mark.parametrize(
    "key", ["", " leading-space", "a" * 256, "tab\there", "ünïcode"], ids=["empty", "space", "long", "tab", "unicode"]
)
def test_a_malformed_idempotency_key_is_refused(service, account, key):
    response = service.post(
        "/api/v1/charges", {"account": account.public_id, "amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_idempotency_key"


def test_an_unknown_field_is_refused_not_defaulted(service, account):
    before = snapshot()
    response = service.post(
        "/api/v1/charges", {"account": account.public_id, "amout": "5", "amount": "1.00"}, format="json"
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "unknown_field" and error["param"] == "amout"
    assert snapshot() == before


@pytest.mark.parametrize(
    "path_body",
    [
        ("/api/v1/grants", {"reasn": "x"}),
        ("/api/v1/holds", {"expires_after": 10}),
        ("/api/v1/quotes", {"key": "model-x", "usgae": {}}),
        ("/api/v1/accounts", {"external_id": "u1", "nmae": "x"}),
    ],
)
def test_unknown_fields_are_refused_on_every_input(service, account, path_body):
    path, extra = path_body
    body = {"account": account.public_id, "amount": "1.00", **extra}
    if path in ("/api/v1/quotes", "/api/v1/accounts"):
        body = dict(extra)
    response = service.post(path, body, format="json")
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "unknown_field"
    assert error_of(response)["param"] == next(iter(extra.keys() - {"key", "external_id"}))


def test_a_quote_still_accepts_a_charge_body(service, account):
    body = {"account": account.public_id, "key": "model-x", "task_id": "t", "route": "/r", "metadata": {}}
    response = service.post("/api/v1/quotes", body, format="json")
    assert response.status_code == 422 and error_of(response)["code"] == "price_not_configured"  # priced, not refused


@pytest.mark.parametrize("amount", ["1\n", "1.00\n", " 1.00", "1.00 ", "\t1", "1\r\n"])
def test_amounts_with_whitespace_are_refused(service, account, amount):
    before = snapshot()
    response = service.post("/api/v1/charges", {"account": account.public_id, "amount": amount}, format="json")
    assert response.status_code == 400
    assert error_of(response)["param"] == "amount"
    assert error_of(response)["fields"]["amount"][0]["code"] == "invalid_format"
    assert snapshot() == before


def test_duplicate_keys_are_refused_not_last_wins(service, account):
    before = snapshot()
    raw = f'{{"account": "{account.public_id}", "amount": "1.00", "amount": "90.00"}}'
    response = post_raw(service, "/api/v1/charges", raw)
    assert response.status_code == 400
    assert error_of(response)["code"] == "duplicate_key" and error_of(response)["param"] == "amount"
    nested = f'{{"account": "{account.public_id}", "amount": "1.00", "metadata": {{"a": 1, "a": 2}}}}'
    assert error_of(post_raw(service, "/api/v1/charges", nested, key="strict-2"))["code"] == "duplicate_key"
    assert snapshot() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("task_id", 1), ("route", 1.5), ("description", True), ("credit_type", 7), ("account", 12), ("task_id", ["a"])],
)
def test_numbers_are_not_coerced_into_text(service, account, field, value):
    before = snapshot()
    body = {"account": account.public_id, "amount": "1.00", field: value}
    response = service.post("/api/v1/charges", body, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "not_a_string" and error_of(response)["param"] == field
    assert snapshot() == before


def test_hold_on_expiry_is_not_coerced(service, account):
    body = {"account": account.public_id, "amount": "1.00", "on_expiry": 1}
    response = service.post("/api/v1/holds", body, format="json")
    assert error_of(response)["code"] == "not_a_string" and error_of(response)["param"] == "on_expiry"


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [
        ("application/json; charset=bogus", 415, "unsupported_charset"),
        ("application/json; charset=latin-1", 415, "unsupported_charset"),
        ("text/plain", 415, "unsupported_media_type"),
        ("application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_content_type_and_charset_must_be_json_and_utf8(service, account, content_type, status, code):
    before = snapshot()
    raw = json.dumps({"account": account.public_id, "amount": "1.00"})
    response = post_raw(service, "/api/v1/charges", raw, content_type=content_type)
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert snapshot() == before


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_a_utf8_charset_is_fine(service, account, charset):
    raw = json.dumps({"account": account.public_id, "amount": "1.00"})
    response = post_raw(service, "/api/v1/charges", raw, content_type=f"application/json; charset={charset}")
    assert response.status_code == 201


def test_a_body_that_is_not_utf8_is_400_invalid_encoding(service, account):
    before = snapshot()
    raw = f'{{"account": "{account.public_id}", "amount": "1.00", "task_id": "caf\xe9"}}'.encode("latin-1")
    response = post_raw(service, "/api/v1/charges", raw)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_encoding"
    assert snapshot() == before


# --- query parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("limit=1.5", "limit"),
        ("created_after=", "created_after"),
        ("created_after=yesterday", "created_after"),
        ("kind=gift", "kind"),
        ("task_id=", "task_id"),
    ],
)
def test_bad_query_values_are_400_with_param(service, account, query, param):
    response = service.get(f"/api/v1/accounts/{account.public_id}/transactions?{query}")
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "validation_error" and error_of(response)["param"] == param


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/accounts/{acc}/refunds?since=",
        "/api/v1/accounts/{acc}/holds?limit=abc",
        "/api/v1/refunds/stats?since=",
        "/api/v1/accounts/{acc}/balance?refresh=",
        "/api/v1/accounts?limit=abc",
    ],
)
def test_bad_query_values_are_400_on_every_get(service, account, path):
    response = service.get(path.format(acc=account.public_id))
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "validation_error" and "param" in error_of(response)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/accounts/{acc}/transactions?knid=grant",
        "/api/v1/accounts/{acc}/balance?refersh=true",
        "/api/v1/accounts/{acc}?expand=x",
        "/api/v1/accounts?externalid=x",
        "/api/v1/prices?credit=credits",
        "/api/v1/refunds/stats?route=x",
    ],
)
def test_unknown_query_parameters_are_refused(service, account, path):
    response = service.get(path.format(acc=account.public_id))
    assert response.status_code == 400, response.content
    assert error_of(response)["code"] == "unknown_field"


def test_a_query_parameter_on_a_money_post_is_refused_and_changes_nothing(service, account):
    for path, body in money_posts(account):
        before = snapshot()
        response = service.post(f"{path}?amount=5", body, format="json")
        assert response.status_code == 400, path
        assert error_of(response)["code"] == "unknown_field" and error_of(response)["param"] == "amount", path
        assert snapshot() == before


def test_a_query_parameter_on_any_write_is_refused(service, account):
    response = service.post(f"/api/v1/accounts/{account.public_id}/portal-sessions?ttl=99999")
    assert response.status_code == 400
    assert error_of(response)["code"] == "unknown_field" and error_of(response)["param"] == "ttl"


def test_a_repeated_query_parameter_is_refused(service, account):
    response = service.get(f"/api/v1/accounts/{account.public_id}/transactions?limit=1&limit=2")
    assert response.status_code == 400
    assert error_of(response)["code"] == "duplicate_key" and error_of(response)["param"] == "limit"


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [("/api/v1/holds", "expires_in", "60"), ("/api/v1/holds", "expires_in", True), ("/api/v1/grants", "priority", 1.0)],
)
def test_integers_must_be_json_integers(service, account, path, field, value):
    before = snapshot()
    body = {"account": account.public_id, "amount": "1.00", field: value}
    response = service.post(path, body, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "not_an_integer" and error_of(response)["param"] == field
    assert snapshot() == before
