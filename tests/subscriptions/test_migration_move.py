"""billing 0011 and subscriptions 0001 move plans, subscriptions and allowance grants out of billing, keeping every row.

The tables are renamed, not copied: plans, subscriptions and allowance
grants keep their ids, keep pointing at each other, at their accounts,
credit types and ledger entries through the same database constraints, and
the content types (with the permissions granted on them) move with the
models. Billing keeps no reference to them.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.models import LedgerEntry, Wallet
from billing.services import daily_limit_get
from subscriptions.models import AllowanceGrant, Plan, Subscription
from subscriptions.services import subscription_create, subscription_status_set
from tests.factories import AccountFactory, PlanFactory, UserFactory, default_credit_type
from tests.migrations import migrate, migrate_to_latest

pytestmark = pytest.mark.django_db(transaction=True)

# Going back to billing 0010 unapplies subscriptions 0001 too (it depends on billing 0011).
BEFORE = [("billing", "0010_credittype_moved_to_pricing")]
TABLES = {"plan", "subscription", "allowancegrant"}


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def tables(prefix: str) -> set[str]:
    return {name for name in connection.introspection.table_names() if name.removeprefix(prefix) in TABLES}


def references_to(table: str) -> set[tuple[str, str]]:
    """Every foreign key to `table`: (referring table, column)."""
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


def references_from(table: str) -> set[tuple[str, str]]:
    """Every foreign key of `table`: (column, referred table)."""
    return set(
        rows(
            """
            SELECT a.attname, c.confrelid::regclass::text
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f' AND c.conrelid = %s::regclass
            """,
            [table],
        )
    )


def test_plans_subscriptions_and_allowance_grants_survive_the_move():
    credit_type = default_credit_type()
    account = AccountFactory()
    plan = PlanFactory(daily_limit=Decimal("20.00"))
    subscription = subscription_create(account=account, plan=plan)
    grant = AllowanceGrant.objects.get(subscription=subscription)
    old_account = AccountFactory()
    old = subscription_create(account=old_account, plan=plan)
    subscription_status_set(subscription=old, status="canceled")
    staff = UserFactory()

    migrate(BEFORE)
    try:
        assert tables("billing_") == {"billing_plan", "billing_subscription", "billing_allowancegrant"}
        assert tables("subscriptions_") == set()
        assert rows("SELECT code FROM billing_plan WHERE id = %s", [plan.pk]) == [(plan.code,)]
        assert rows("SELECT entry_id FROM billing_allowancegrant WHERE id = %s", [grant.pk]) == [(grant.entry_id,)]
        assert references_to("billing_plan") == {("billing_subscription", "plan_id")}
        assert references_to("billing_subscription") == {("billing_allowancegrant", "subscription_id")}
        # Written the way the old code wrote it: a plan, a live subscription to
        # it with its allowance record, and a permission on plans granted to a
        # member of staff.
        (plan_id,) = rows(
            "INSERT INTO billing_plan (code, name, credit_type_id, monthly_allowance, daily_limit, trial_allowance, "
            "trial_daily_limit, allowance_expires, is_active, created_at) "
            "VALUES ('legacy', 'Legacy', %s, 0, 3, 0, 1, true, true, now()) RETURNING id",
            [credit_type.pk],
        )[0]
        later = AccountFactory()
        (subscription_id,) = rows(
            "INSERT INTO billing_subscription (account_id, plan_id, status, current_period_start, current_period_end, "
            "stripe_customer_id, stripe_subscription_id, metadata, created_at, updated_at) "
            "VALUES (%s, %s, 'active', now(), now() + interval '30 days', '', 'sub_legacy', '{}', now(), now()) "
            "RETURNING id",
            [later.pk, plan_id],
        )[0]
        (grant_id,) = rows(
            "INSERT INTO billing_allowancegrant (subscription_id, period_start, period_end, amount, created_at) "
            "SELECT id, current_period_start, current_period_end, 0, now() FROM billing_subscription WHERE id = %s "
            "RETURNING id",
            [subscription_id],
        )[0]
        (permission_id,) = rows(
            "SELECT p.id FROM auth_permission p JOIN django_content_type t ON t.id = p.content_type_id "
            "WHERE t.app_label = 'billing' AND t.model = 'plan' AND p.codename = 'change_plan'"
        )[0]
        rows(
            "INSERT INTO auth_user_user_permissions (user_id, permission_id) VALUES (%s, %s)",
            [staff.pk, permission_id],
        )
    finally:
        migrate_to_latest()
    ContentType.objects.clear_cache()

    assert tables("billing_") == set()
    assert tables("subscriptions_") == {
        "subscriptions_plan",
        "subscriptions_subscription",
        "subscriptions_allowancegrant",
    }
    # The same foreign keys, on the renamed tables; none from billing points up at them.
    assert references_to("subscriptions_plan") == {("subscriptions_subscription", "plan_id")}
    assert references_to("subscriptions_subscription") == {("subscriptions_allowancegrant", "subscription_id")}
    assert references_to("subscriptions_allowancegrant") == set()
    assert references_from("subscriptions_plan") == {("credit_type_id", "pricing_credittype")}
    assert references_from("subscriptions_subscription") == {
        ("account_id", "accounts_account"),
        ("plan_id", "subscriptions_plan"),
    }
    assert references_from("subscriptions_allowancegrant") == {
        ("subscription_id", "subscriptions_subscription"),
        ("entry_id", "billing_ledgerentry"),
    }
    # Same rows, same ids, still pointing at each other and at the ledger.
    assert Plan.objects.get(pk=plan.pk).code == plan.code
    assert Subscription.objects.get(pk=subscription.pk).plan_id == plan.pk
    moved = AllowanceGrant.objects.select_related("entry").get(pk=grant.pk)
    assert moved.subscription_id == subscription.pk and moved.entry.amount == Decimal("100.00")
    assert moved.entry == LedgerEntry.objects.get(account=account, kind="grant")
    assert Subscription.objects.get(pk=old.pk).status == "canceled"
    assert Subscription.objects.get(pk=subscription_id).plan.code == "legacy"
    assert AllowanceGrant.objects.get(pk=grant_id).subscription_id == subscription_id
    assert Wallet.objects.get(account=account).balance == Decimal("100.00")
    # Billing's debit lock reads the plans' limits from the renamed tables.
    assert daily_limit_get(account=account, credit_type=credit_type) == Decimal("20.00")
    assert daily_limit_get(account=later, credit_type=credit_type) == Decimal("3")
    # The identity sequences came along: new rows get the next ids.
    assert PlanFactory().pk > plan_id
    assert subscription_create(account=old_account, plan=plan).pk > subscription_id
    assert AllowanceGrant.objects.order_by("-pk").first().pk > grant_id
    # So did the constraints.
    with pytest.raises(IntegrityError, match="subscription_one_live_per_account"), transaction.atomic():
        Subscription.objects.create(
            account=account,
            plan=plan,
            current_period_start=timezone.now(),
            current_period_end=timezone.now() + timedelta(days=1),
        )
    with pytest.raises(IntegrityError, match="plan_daily_limit_non_negative"), transaction.atomic():
        PlanFactory(daily_limit=Decimal("-1"))
    # The content types moved, with the permission granted on plans.
    content_type = ContentType.objects.get_for_model(Plan)
    assert content_type.app_label == "subscriptions"
    assert not ContentType.objects.filter(app_label="billing", model__in=TABLES).exists()
    assert Permission.objects.get(pk=permission_id).content_type == content_type
    staff = type(staff).objects.get(pk=staff.pk)
    assert staff.has_perm("subscriptions.change_plan")


def test_a_fresh_database_gets_the_tables_under_subscriptions():
    """From before billing made plans (0006) to now: created as billing's, renamed, and working."""
    migrate([("billing", "0005_ledger_entry_pricing")])
    try:
        assert tables("billing_") == set() and tables("subscriptions_") == set()
    finally:
        migrate_to_latest()
    assert tables("subscriptions_") == {
        "subscriptions_plan",
        "subscriptions_subscription",
        "subscriptions_allowancegrant",
    }
    assert tables("billing_") == set()
    account = AccountFactory()
    subscription = subscription_create(account=account, plan=PlanFactory(), status="trialing")
    assert AllowanceGrant.objects.get(subscription=subscription).amount == Decimal("10.00")
    assert daily_limit_get(account=account, credit_type=default_credit_type()) == Decimal("5.00")
