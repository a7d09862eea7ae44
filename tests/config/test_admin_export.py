"""CSV export of the ledger, the refund log and holds: streamed, filtered as on screen, amounts at scale."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.http import StreamingHttpResponse

from billing.models import LedgerEntry
from billing.services import Actor, charge_create
from refunds.services import refund_issue
from tests.factories import UserFactory, default_credit_type, funded_account

pytestmark = pytest.mark.django_db


def _rows(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_ledger_export_streams_the_filtered_rows_with_amounts_at_scale(admin_client):
    account = funded_account("1234.5")
    for _ in range(3):
        charge_create(account=account, credit_type=default_credit_type(), amount=Decimal("0.25"), actor=Actor.system())
    other = funded_account("7")
    listing = admin_client.get(f"/admin/billing/ledgerentry/?q={account.public_id}")
    assert f"export.csv?q={account.public_id}".encode() in listing.content
    rows = _rows(admin_client.get(f"/admin/billing/ledgerentry/export.csv?q={account.public_id}"))
    assert len(rows) == 4 and {row["account"] for row in rows} == {account.public_id}
    grant = next(row for row in rows if row["kind"] == "grant")
    assert grant["amount"] == "1234.50"  # at scale, no thousands separator
    assert sorted(row["amount"] for row in rows if row["kind"] == "charge") == ["-0.25"] * 3
    assert len(_rows(admin_client.get("/admin/billing/ledgerentry/export.csv?kind__exact=grant"))) == 2
    assert other.public_id in {r["account"] for r in _rows(admin_client.get("/admin/billing/ledgerentry/export.csv"))}


def test_the_refund_log_and_holds_export(admin_client):
    account = funded_account("100")
    charge = charge_create(
        account=account, credit_type=default_credit_type(), amount=Decimal("10"), actor=Actor.system()
    )
    refund_issue(charge=charge, amount=Decimal("2.5"), reason="duplicate", note="", metadata={}, actor=Actor.system())
    rows = _rows(admin_client.get("/admin/refunds/refundlog/export.csv"))
    assert [(r["amount"], r["charge"]) for r in rows] == [("2.50", charge.public_id)]
    assert admin_client.get("/admin/billing/hold/export.csv").status_code == 200
    assert b"export.csv" in admin_client.get("/admin/billing/hold/").content


def test_export_needs_the_view_permission(client):
    funded_account("5")
    staff = UserFactory()
    client.force_login(staff)
    assert client.get("/admin/billing/ledgerentry/export.csv").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_ledgerentry"))
    staff = type(staff).objects.get(pk=staff.pk)
    client.force_login(staff)
    assert len(_rows(client.get("/admin/billing/ledgerentry/export.csv"))) == LedgerEntry.objects.count()


def test_text_a_spreadsheet_would_run_is_quoted(admin_client):
    account = funded_account("10")
    charge_create(
        account=account,
        credit_type=default_credit_type(),
        amount=Decimal("1"),
        description='=HYPERLINK("http://x")',
        actor=Actor.system(),
    )
    rows = _rows(admin_client.get(f"/admin/billing/ledgerentry/export.csv?q={account.public_id}&kind__exact=charge"))
    assert [(r["description"], r["amount"]) for r in rows] == [('\'=HYPERLINK("http://x")', "-1.00")]
