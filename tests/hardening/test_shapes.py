"""One shape everywhere (issue 12): every list endpoint answers the one list shape and follows
its cursor; every amount in a body is at its credit type's scale, every unit price a plain
decimal without trailing zeros."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import LedgerEntry
from tests.factories import (
    AccountFactory,
    CreditTypeFactory,
    PriceFactory,
    charge_for,
    funded_account,
    hold_for,
    service_key,
)

pytestmark = pytest.mark.django_db

LIST_KEYS = {"object", "data", "has_more", "next_cursor"}


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def assert_list(body: dict) -> list:
    assert LIST_KEYS <= body.keys(), body
    assert body["object"] == "list" and isinstance(body["data"], list) and isinstance(body["has_more"], bool)
    assert body["next_cursor"] is None or isinstance(body["next_cursor"], str)
    assert "results" not in body and "next" not in body
    return body["data"]


def walk(client, path: str, limit: int = 2) -> list:
    """Every item of a list, following next_cursor page by page."""
    items, cursor = [], None
    while True:
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        page = assert_list(body)
        assert len(page) <= limit
        items.extend(page)
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return items
        cursor = body["next_cursor"]


def test_accounts_list_is_paginated_in_the_one_shape(service):
    made = [AccountFactory() for _ in range(5)]
    ids = [a["id"] for a in walk(service, "/api/v1/accounts")]
    assert ids[:5] == [a.public_id for a in reversed(made)]
    assert len(ids) == len(set(ids))


def test_accounts_list_by_external_id(service):
    account = AccountFactory(external_id="user-42")
    assert [a["id"] for a in walk(service, "/api/v1/accounts?external_id=user-42")] == [account.public_id]


def test_transactions_list_shape_and_cursor(service):
    account = funded_account("10.00")
    for _ in range(4):
        charge_for(account, "1.00")
    entries = walk(service, f"/api/v1/accounts/{account.public_id}/transactions")
    assert [e["kind"] for e in entries] == ["charge"] * 4 + ["grant"]


def test_holds_list_shape_and_cursor(service):
    account = funded_account("10.00")
    made = [hold_for(account, "1.00") for _ in range(3)]
    holds = walk(service, f"/api/v1/accounts/{account.public_id}/holds")
    assert [h["id"] for h in holds] == [h.public_id for h in reversed(made)]


def test_refunds_list_shape_and_cursor(service):
    account = funded_account("10.00")
    for _ in range(3):
        entry = charge_for(account, "1.00")
        response = service.post(f"/api/v1/charges/{entry.public_id}/refunds", {"reason": "timeout"}, format="json")
        assert response.status_code == 201
    assert len(walk(service, f"/api/v1/accounts/{account.public_id}/refunds")) == 3


def test_prices_list_is_one_page_in_the_one_shape(service):
    PriceFactory(key="openai/gpt-4o")
    body = service.get("/api/v1/prices").json()
    data = assert_list(body)
    assert body["has_more"] is False and body["next_cursor"] is None
    assert "aliases" in body and any(p["key"] == "openai/gpt-4o" for p in data)


def test_an_empty_list_has_no_more(service):
    account = AccountFactory()
    body = service.get(f"/api/v1/accounts/{account.public_id}/holds").json()
    assert body == {"object": "list", "data": [], "has_more": False, "next_cursor": None}


# --- amounts at scale, unit prices plain -----------------------------------------


def test_a_quote_shows_its_amount_at_scale_and_unit_prices_without_trailing_zeros(service):
    PriceFactory(key="openai/gpt-4o", per_request=Decimal("0.25"))
    body = service.post(
        "/api/v1/quotes", {"key": "openai/gpt-4o", "usage": {"input_tokens": 1000, "requests": 1}}, format="json"
    ).json()
    assert body["amount"] == "2.75"
    assert body["unit_prices"]["per_request"] == "0.25"
    assert body["unit_prices"]["per_1k_input_tokens"] == "2.5"
    assert body["unit_prices"]["per_1k_output_tokens"] == "10"
    assert body["unit_prices"]["per_unit"] == "0"


def test_an_entry_stored_with_nine_places_shows_plain_unit_prices(service):
    account = funded_account("100.00")
    PriceFactory(key="openai/gpt-4o")
    created = service.post(
        "/api/v1/charges",
        {"account": account.public_id, "key": "openai/gpt-4o", "usage": {"input_tokens": 1000}},
        format="json",
    ).json()
    entry = LedgerEntry.objects.get(public_id=created["id"])
    # As entries were stored before: nine places (the ledger is append-only, so only the rendering changes).
    assert created["pricing"]["unit_prices"]["per_1k_input_tokens"] == "2.5"
    listed = service.get(f"/api/v1/accounts/{account.public_id}/transactions?kind=charge").json()["data"][0]
    assert listed["pricing"]["unit_prices"] == created["pricing"]["unit_prices"]
    assert entry.unit_prices["per_1k_input_tokens"] in ("2.5", "2.500000000")


@pytest.mark.parametrize(("scale", "amount", "zero"), [(2, "1.00", "0.00"), (0, "3", "0"), (6, "1.500000", "0.000000")])
def test_a_fully_refunded_charge_shows_refundable_at_scale(service, scale, amount, zero):
    credit_type = CreditTypeFactory(scale=scale)
    account = funded_account("10", credit_type=credit_type)
    entry = charge_for(account, amount, credit_type=credit_type)
    first = service.post(f"/api/v1/charges/{entry.public_id}/refunds", {"reason": "timeout"}, format="json")
    assert first.status_code == 201 and first.json()["charge_refundable"] == zero
    again = service.post(f"/api/v1/charges/{entry.public_id}/refunds", {"reason": "timeout"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "charge_fully_refunded"
    assert again.json()["error"]["refundable"] == zero


@pytest.mark.parametrize(
    ("scale", "balance", "amount", "available", "required"),
    [(0, "5", "7", "5", "7"), (2, "5.00", "7.5", "5.00", "7.50"), (6, "5.123456", "7", "5.12", "7.000000")],
)
def test_an_insufficient_credits_error_shows_amounts_at_scale(service, scale, balance, amount, available, required):
    credit_type = CreditTypeFactory(scale=scale)
    account = funded_account(balance, credit_type=credit_type)
    body = {"account": account.public_id, "credit_type": credit_type.code, "amount": amount}
    error = service.post("/api/v1/charges", body, format="json").json()["error"]
    assert error["code"] == "insufficient_credits"
    assert (error["available"], error["required"]) == (available, required)
