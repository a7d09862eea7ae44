"""GET /api/v1/accounts/{id}/statement: opening, the period's entries, closing, and whether the chain verifies."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.account_statement import AccountStatement
from billing.models import LedgerEntry
from billing.services import Actor, adjustment_create, charge_create, grant_create
from tests.factories import account_key, charge_for, default_credit_type, funded_account, service_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(api_client):
    _, secret = service_key()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def url(account) -> str:
    return f"/api/v1/accounts/{account.public_id}/statement"


def test_statement_of_a_period_opens_with_the_balance_before_it_and_closes_with_the_last_entry(service):
    account = funded_account("100.00")
    charge_for(account, "10.00")
    middle = timezone.now()
    second = charge_for(account, "2.50")
    response = service.get(url(account), {"from": middle.isoformat()})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "statement" and body["credit_type"] == "credits"
    assert body["opening_balance"] == "90.00" and body["closing_balance"] == "87.50"
    assert [entry["id"] for entry in body["entries"]] == [second.public_id]
    assert body["entry_count"] == 1 and body["chain_verified"] is True


def test_statement_without_a_period_is_the_whole_ledger(service):
    account = funded_account("10.00")
    charge_for(account, "1.00")
    body = service.get(url(account)).json()
    assert body["opening_balance"] == "0.00" and body["closing_balance"] == "9.00" and body["entry_count"] == 2
    assert body["period_from"] is None and body["period_to"] is None


def test_statement_as_csv_by_format_or_accept_header(service):
    account = funded_account("10.00")
    charge = charge_for(account, "1.00", description='=HYPERLINK("x")')
    for response in (service.get(url(account), {"format": "csv"}), service.get(url(account), HTTP_ACCEPT="text/csv")):
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert [row["line"] for row in rows] == ["opening", "entry", "entry", "closing"]
        assert rows[0]["balance_after"] == "0.00" and rows[-1]["balance_after"] == "9.00"
        assert rows[2]["id"] == charge.public_id and rows[2]["amount"] == "-1.00"
        assert rows[2]["description"].startswith("'=")  # never a formula in a spreadsheet
        assert rows[-1]["chain_verified"] == "true"


def test_a_tampered_entry_in_the_period_is_not_verified(service):
    account = funded_account("10.00")
    charge = charge_for(account, "1.00")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE billing_ledgerentry SET amount = -0.5, balance_after = 9.5 WHERE id = %s", [charge.pk])
    assert service.get(url(account)).json()["chain_verified"] is False


def test_an_account_key_sees_its_own_statement_only(api_client):
    mine, other = funded_account("5.00"), funded_account("5.00")
    _, secret = account_key(mine)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api_client.get(url(mine)).status_code == 200
    response = api_client.get(url(other))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("query", "code", "param"),
    [
        ({"since": "2026-01-01T00:00:00Z"}, "unknown_field", "since"),
        ({"from": ""}, "validation_error", "from"),
        ({"from": "yesterday"}, "validation_error", "from"),
        ({"to": "0001-01-01T00:00:00+15:00"}, "validation_error", "to"),
        ({"format": "xml"}, "validation_error", "format"),
    ],
)
def test_bad_query_is_400_naming_the_parameter(service, query, code, param):
    response = service.get(url(funded_account("1.00")), query)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code and response.json()["error"]["param"] == param


def test_an_unknown_credit_type_is_404(service):
    response = service.get(url(funded_account("1.00")), {"credit_type": "nope"})
    assert response.status_code == 404


def test_a_period_too_long_for_json_is_400_but_streams_as_csv(service, monkeypatch):
    monkeypatch.setattr("billing.api_statement.STATEMENT_MAX_ENTRIES", 1)
    account = funded_account("5.00")
    charge_for(account, "1.00")
    assert service.get(url(account)).json()["error"]["code"] == "statement_too_large"
    assert service.get(url(account), {"format": "csv"}).status_code == 200


# --- the property: opening + the period's entries = closing, always ---------------------------

operations = st.lists(
    st.tuples(st.sampled_from(["grant", "charge", "adjust"]), st.decimals("0.01", "40", places=2)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, cut=st.tuples(st.integers(0, 12), st.integers(0, 12)))
def test_opening_plus_entries_is_closing_for_any_period(ops, cut):
    credit_type = default_credit_type()
    account = funded_account("50.00")
    times = [timezone.now() - timedelta(seconds=1)]
    for kind, amount in ops:
        if kind == "grant":
            grant_create(account=account, credit_type=credit_type, amount=amount, reason="p", actor=Actor.system())
        else:
            balance = LedgerEntry.objects.filter(account=account).order_by("-id").first().balance_after
            if amount > balance:
                continue
            if kind == "charge":
                charge_create(account=account, credit_type=credit_type, amount=amount, actor=Actor.system())
            else:
                adjustment_create(
                    account=account, credit_type=credit_type, amount=-amount, actor=Actor.system(), reason="p"
                )
        times.append(timezone.now())
    times.append(timezone.now() + timedelta(seconds=1))
    start, end = sorted(times[min(i, len(times) - 1)] for i in cut)
    statement = AccountStatement(account=account, credit_type=credit_type, start=start, end=end)
    amounts = [entry.amount for entry in statement.entries()]
    assert statement.opening + sum(amounts, Decimal(0)) == statement.closing
    assert statement.chain_verified
