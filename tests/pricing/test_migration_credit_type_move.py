"""pricing 0003, refunds 0003 and billing 0010 move CreditType from billing to pricing, keeping every row.

The table is renamed, not copied: credit types keep their ids, wallets,
ledger entries, holds, prices and refunds keep pointing at them through the
same database constraints, and the content type (with the permissions
granted on it) moves with the model.
"""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction

from billing.models import Hold, LedgerEntry, Wallet
from billing.services import Actor
from pricing.models import CreditType, Price
from refunds.models import RefundLog
from refunds.services import refund_issue
from tests.factories import CreditTypeFactory, PriceFactory, UserFactory, charge_for, funded_account, hold_for
from tests.migrations import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("billing", "0009_lots_and_daily_usage_keyed_by_account"),
    ("pricing", "0002_price_versions_append_only"),
    ("refunds", "0002_refund_triggers"),
]

# Every foreign key to the credit type table: (table, column).
REFERENCES = {
    ("billing_wallet", "credit_type_id"),
    ("billing_ledgerentry", "credit_type_id"),
    ("billing_hold", "credit_type_id"),
    ("billing_plan", "credit_type_id"),
    ("billing_dailylimitoverride", "credit_type_id"),
    ("pricing_price", "credit_type_id"),
    ("pricing_pricinganomaly", "credit_type_id"),
    ("refunds_refundlog", "credit_type_id"),
}
# Plans moved on to the subscriptions app later (subscriptions 0001), their table renamed in place.
REFERENCES_NOW = (
    REFERENCES - {("billing_plan", "credit_type_id")}
    | {("subscriptions_plan", "credit_type_id")}
    # Apps added after the move, whose tables point at pricing's from the start.
    | {("approvals_approvalrequest", "credit_type_id"), ("approvals_approvalthreshold", "credit_type_id")}
    | {("console_ledgerday", "credit_type_id"), ("console_walletday", "credit_type_id")}
    | {("console_walletwindow", "credit_type_id")}
    | {("payments_creditpack", "credit_type_id"), ("payments_purchase", "credit_type_id")}
)


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def references_to(table: str) -> set[tuple[str, str]]:
    return set(
        rows(
            """
            SELECT c.conrelid::regclass::text, a.attname
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f' AND c.confrelid = %s::regclass
            """,
            [table],
        )
    )


def test_credit_types_and_everything_in_them_survive_the_move():
    gems = CreditTypeFactory(code="gems", scale=0)
    account = funded_account("100", credit_type=gems)
    charge = charge_for(account, "30", credit_type=gems)
    refund_issue(charge=charge, actor=Actor.system(), reason="backend_failure", amount="10")
    hold = hold_for(account, "5", credit_type=gems)
    price = PriceFactory(credit_type=gems)
    wallet = Wallet.objects.get(account=account, credit_type=gems)
    entries = list(LedgerEntry.objects.filter(wallet=wallet).order_by("id").values_list("id", "credit_type_id"))
    staff = UserFactory()

    migrate(BEFORE)
    try:
        tables = connection.introspection.table_names()
        assert "billing_credittype" in tables and "pricing_credittype" not in tables
        assert rows("SELECT code, scale FROM billing_credittype WHERE id = %s", [gems.pk]) == [("gems", 0)]
        assert references_to("billing_credittype") == REFERENCES
        # Written the way the old code wrote it: a credit type and a wallet in it,
        # and a permission on credit types granted to a member of staff.
        (tokens_id,) = rows(
            "INSERT INTO billing_credittype (code, name, scale, created_at) "
            "VALUES ('tokens', 'Tokens', 3, now()) RETURNING id"
        )[0]
        rows(
            "INSERT INTO billing_wallet (account_id, credit_type_id, balance, held, lot_balance, created_at, "
            "updated_at) VALUES (%s, %s, 0, 0, 0, now(), now())",
            [account.pk, tokens_id],
        )
        (permission_id,) = rows(
            "SELECT p.id FROM auth_permission p JOIN django_content_type t ON t.id = p.content_type_id "
            "WHERE t.app_label = 'billing' AND t.model = 'credittype' AND p.codename = 'change_credittype'"
        )[0]
        rows(
            "INSERT INTO auth_user_user_permissions (user_id, permission_id) VALUES (%s, %s)",
            [staff.pk, permission_id],
        )
    finally:
        migrate_to_latest()
    ContentType.objects.clear_cache()

    tables = connection.introspection.table_names()
    assert "pricing_credittype" in tables and "billing_credittype" not in tables
    assert references_to("pricing_credittype") == REFERENCES_NOW
    # Same rows, same ids.
    assert CreditType.objects.get(pk=gems.pk).code == "gems"
    assert CreditType.objects.get(pk=tokens_id).scale == 3
    assert set(CreditType.objects.values_list("code", flat=True)) == {"credits", "gems", "tokens"}
    # Everything that pointed at a credit type still does.
    wallet.refresh_from_db()
    assert wallet.credit_type.code == "gems" and wallet.balance == Decimal("80") and wallet.held == Decimal("5")
    assert list(LedgerEntry.objects.filter(wallet=wallet).order_by("id").values_list("id", "credit_type_id")) == entries
    assert sum(LedgerEntry.objects.filter(wallet=wallet).values_list("amount", flat=True)) == wallet.balance
    assert Hold.objects.get(pk=hold.pk).credit_type.code == "gems"
    assert Price.objects.get(pk=price.pk).credit_type.code == "gems"
    assert RefundLog.objects.get(charge=charge).credit_type.code == "gems"
    assert Wallet.objects.get(account=account, credit_type__code="tokens").balance == 0
    # The identity sequence came along: a new credit type gets the next id.
    assert CreditType.objects.create(code="later", name="Later").pk > tokens_id
    # So did the constraints.
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditType.objects.create(code="tenths", name="Tenths", scale=10)
    # The content type moved, with the permission granted on it.
    content_type = ContentType.objects.get_for_model(CreditType)
    assert content_type.app_label == "pricing"
    assert not ContentType.objects.filter(app_label="billing", model="credittype").exists()
    assert Permission.objects.get(pk=permission_id).content_type == content_type
    staff = type(staff).objects.get(pk=staff.pk)
    assert staff.has_perm("pricing.change_credittype")


def test_a_fresh_database_still_gets_the_default_credit_type():
    """billing 0002 makes `credits` before the move; it ends up in pricing's table."""
    migrate([("billing", "0001_initial")])
    try:
        rows("DELETE FROM billing_credittype")
    finally:
        migrate_to_latest()
    assert list(CreditType.objects.values_list("code", "name", "scale")) == [("credits", "Credits", 2)]
