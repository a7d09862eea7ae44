"""The database refuses a violation of every named constraint and trigger on our tables.

Discovery
    At test time, from the PostgreSQL catalogs, for the tables of every app
    that lives in this repository (`django.apps` configs under BASE_DIR, not
    installed packages, so Django's contrib tables are out and a new app is in):
    CHECK, UNIQUE and EXCLUDE constraints (`pg_constraint`), unique indexes
    that back no constraint (conditional `UniqueConstraint`s), and user
    triggers (`pg_trigger` where not `tgisinternal`). Primary and foreign keys
    are out of scope.

Cases
    One per name in `CASES`. A case builds minimal valid rows (tests/factories.py),
    then attempts exactly one violation inside `refused(...)`, which asserts the
    database said no and named the constraint (or, for a trigger, that the error
    came from the trigger's function with the expected message). Model
    validation is bypassed on purpose: `QuerySet.update()`, plain inserts and raw
    SQL. Where a violation necessarily breaks a second constraint too, the case
    drops that one for the attempt (`without=`), inside the attempt's savepoint,
    so the refusal is this constraint's own. Each attempt ends with
    `SET CONSTRAINTS ALL IMMEDIATE`, so a deferred constraint trigger fires
    inside it rather than at a commit the test never reaches.

`test_every_constraint_and_trigger_has_a_case` fails, naming it, when a
constraint or trigger has no case, or a case names one that no longer exists.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import DataError, IntegrityError, InternalError, connection, transaction
from django.utils import timezone

from tests import factories as f

pytestmark = pytest.mark.django_db

REFUSALS = (IntegrityError, DataError, InternalError)


# --- discovery ----------------------------------------------------------------


@dataclass(frozen=True)
class Guard:
    name: str
    kind: str  # "check", "unique", "exclude", "unique index" or "trigger"
    table: str
    function: str = ""  # a trigger's function


def project_tables() -> list[str]:
    """The tables of the models of every app whose code lives in this repository."""
    root = Path(settings.BASE_DIR).resolve()
    installed = Path(sys.prefix).resolve()
    tables = set()
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if not path.is_relative_to(root) or path.is_relative_to(installed) or "site-packages" in path.parts:
            continue
        for model in config.get_models(include_auto_created=True):
            if model._meta.managed and not model._meta.proxy:
                tables.add(model._meta.db_table)
    return sorted(tables)


DISCOVERY_SQL = """
SELECT con.conname, CASE con.contype WHEN 'c' THEN 'check' WHEN 'u' THEN 'unique' ELSE 'exclude' END,
       con.conrelid::regclass::text, ''
  FROM pg_constraint con
 WHERE con.conrelid = ANY(%(tables)s::regclass[]) AND con.contype IN ('c', 'u', 'x')
UNION ALL
SELECT idx.relname, 'unique index', i.indrelid::regclass::text, ''
  FROM pg_index i JOIN pg_class idx ON idx.oid = i.indexrelid
 WHERE i.indrelid = ANY(%(tables)s::regclass[]) AND i.indisunique AND NOT i.indisprimary
   AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                    WHERE con.conrelid = i.indrelid AND con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x'))
UNION ALL
SELECT t.tgname, 'trigger', t.tgrelid::regclass::text, p.proname
  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE t.tgrelid = ANY(%(tables)s::regclass[]) AND NOT t.tgisinternal
"""


def database_guards() -> list[Guard]:
    with connection.cursor() as cursor:
        cursor.execute(DISCOVERY_SQL, {"tables": project_tables()})
        return [Guard(*row) for row in cursor.fetchall()]


def guards_by_name() -> dict[str, Guard]:
    return {guard.name: guard for guard in database_guards()}


# --- refusals -----------------------------------------------------------------


@contextmanager
def refused(name: str, *, without: Sequence[str] = ()) -> Iterator[None]:
    """The block must be refused by the constraint or unique index `name`.

    `without`: constraints the same violation necessarily breaks too, dropped
    for this attempt only (the savepoint's rollback restores them).
    """
    with _attempt(without) as excinfo:
        yield
    diag = excinfo.value.__cause__.diag
    assert diag.constraint_name == name, f"refused by {diag.constraint_name!r}, not {name!r}: {excinfo.value}"


@contextmanager
def refused_by_trigger(name: str, *, match: str, constraint: str | None = None) -> Iterator[None]:
    """The block must be refused by trigger `name`'s function with a message matching `match`."""
    function = guards_by_name()[name].function
    with _attempt(()) as excinfo:
        yield
    diag = excinfo.value.__cause__.diag
    assert f"function {function}(" in (diag.context or ""), f"not refused by {name} ({function}): {excinfo.value}"
    assert re.search(match, diag.message_primary), diag.message_primary
    if constraint is not None:
        assert diag.constraint_name == constraint, diag.constraint_name


@contextmanager
def _attempt(without: Sequence[str]) -> Iterator[pytest.ExceptionInfo]:
    with connection.cursor() as cursor:
        # Run the set-up's deferred checks (Django's FKs are DEFERRABLE) now, so
        # that what fails below is the attempt, and an ALTER TABLE may follow.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(REFUSALS) as excinfo, transaction.atomic(), connection.cursor() as cursor:
        for other in without:
            table = guards_by_name()[other].table
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{other}"')
        yield excinfo
        # Deferred constraints and constraint triggers fire here rather than at
        # a commit the test never reaches.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def execute(sql: str, params: Sequence[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- the cases ----------------------------------------------------------------

CASES: dict[str, Callable[[], None]] = {}


def case(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def register(function: Callable[[], None]) -> Callable[[], None]:
        assert name not in CASES, f"two cases for {name}"
        CASES[name] = function
        return function

    return register


def update_case(name: str, make: Callable[[], object], *, without: Sequence[str] = (), **values: object) -> None:
    """A valid row from `make`, then an UPDATE that sets `values` on it."""

    def run() -> None:
        row = make()
        with refused(name, without=without):
            type(row).objects.filter(pk=row.pk).update(**values)

    case(name)(run)


def duplicate_by_update(name: str, make: Callable[[], object], *fields: str) -> None:
    """Two valid rows from `make`, then an UPDATE giving the second the first's `fields`."""

    def run() -> None:
        first, second = make(), make()
        with refused(name):
            type(second).objects.filter(pk=second.pk).update(**{field: getattr(first, field) for field in fields})

    case(name)(run)


def insert_case(
    name: str, make: Callable[..., object], *, parents: Sequence[str] = (), without: Sequence[str] = (), **values
) -> None:
    """A valid row from `make`; then `make` inserts a sibling (same `parents`) carrying `values`.

    For append-only tables, whose rows an UPDATE cannot reach.
    """

    def run() -> None:
        first = make()
        with refused(name, without=without):
            make(**{parent: getattr(first, parent) for parent in parents}, **values)

    case(name)(run)


def duplicate_by_insert(name: str, make: Callable[..., object], *fields: str, parents: Sequence[str] = ()) -> None:
    """A valid row from `make`; then `make` inserts a sibling with the first's `fields`."""

    def run() -> None:
        first = make()
        shared = {field: getattr(first, field) for field in (*parents, *fields)}
        with refused(name):
            make(**shared)

    case(name)(run)


now = timezone.now

# accounts_account
update_case("account_status_valid", f.AccountFactory, status="closed")
duplicate_by_update("account_external_id_unique", f.AccountFactory, "external_id")
duplicate_by_update("account_public_id_unique", f.AccountFactory, "public_id")

# accounts_apikey
update_case("apikey_kind_matches_account", f.ApiKeyFactory, kind="account")  # an account key with no account
duplicate_by_update("apikey_prefix_unique", f.ApiKeyFactory, "prefix")
duplicate_by_update("apikey_public_id_unique", f.ApiKeyFactory, "public_id")

# credit types
update_case("credittype_scale_0_9", f.CreditTypeFactory, scale=10)
# PositiveSmallIntegerField's own CHECK; -1 breaks credittype_scale_0_9 too.
update_case("billing_credittype_scale_check", f.CreditTypeFactory, scale=-1, without=["credittype_scale_0_9"])
duplicate_by_update("billing_credittype_code_key", f.CreditTypeFactory, "code")

# billing_wallet: held and lot_balance are >= 0 and <= balance, so a negative
# balance breaks those "within" constraints too.
update_case(
    "wallet_balance_non_negative",
    f.WalletFactory,
    balance=-1,
    without=["wallet_held_within_balance", "wallet_lot_balance_within_balance"],
)
update_case("wallet_held_non_negative", f.WalletFactory, held=-1)
update_case("wallet_held_within_balance", f.WalletFactory, held=1)
update_case("wallet_lot_balance_non_negative", f.WalletFactory, lot_balance=-1)
update_case("wallet_lot_balance_within_balance", f.WalletFactory, lot_balance=1)
duplicate_by_update("wallet_one_per_account_credit_type", f.WalletFactory, "account_id")

# billing_ledgerentry (append-only: violations are inserts)
insert_case("ledger_amount_non_zero", f.LedgerEntryFactory, parents=["wallet"], kind="adjustment", amount=0)
insert_case("ledger_amount_sign_matches_kind", f.LedgerEntryFactory, parents=["wallet"], kind="grant", amount=-1)
insert_case("ledger_balance_after_non_negative", f.LedgerEntryFactory, parents=["wallet"], balance_after=-1)
# No kind outside the list has a sign rule, so an unknown kind breaks the sign constraint too.
insert_case(
    "ledger_kind_valid",
    f.LedgerEntryFactory,
    parents=["wallet"],
    kind="bonus",
    without=["ledger_amount_sign_matches_kind"],
)
duplicate_by_insert("ledger_public_id_unique", f.LedgerEntryFactory, "public_id", parents=["wallet"])

# billing_idempotencyrecord
update_case("billing_idempotencyrecord_response_status_check", f.IdempotencyRecordFactory, response_status=-1)
duplicate_by_insert(
    "idempotency_key_unique_per_account", f.IdempotencyRecordFactory, "key", parents=["account", "api_key"]
)

# billing_hold
update_case("hold_amount_positive", f.HoldFactory, amount=0)
update_case("hold_on_expiry_valid", f.HoldFactory, on_expiry="never")
update_case("hold_resolved_at_iff_resolved", f.HoldFactory, resolved_at=now())
update_case("hold_status_valid", f.HoldFactory, status="lost", resolved_at=now())
duplicate_by_update("hold_public_id_unique", f.HoldFactory, "public_id")


def _captured_hold(**kwargs):
    entry = kwargs.pop("capture_entry", None) or f.LedgerEntryFactory(kind="charge", amount=-1, balance_after=0)
    return f.HoldFactory(
        wallet=entry.wallet, status="captured", resolved_at=now(), captured_amount=1, capture_entry=entry, **kwargs
    )


@case("hold_capture_entry_iff_charged")
def _():
    hold = f.HoldFactory()
    entry = f.LedgerEntryFactory(wallet=hold.wallet, kind="charge", amount=-1, balance_after=0)
    with refused("hold_capture_entry_iff_charged"):
        type(hold).objects.filter(pk=hold.pk).update(capture_entry=entry)  # an entry, but nothing captured


# captured_amount >= 0 follows from the two rules on what a hold may capture:
# a negative amount breaks both of them too.
update_case(
    "hold_captured_non_negative",
    f.HoldFactory,
    captured_amount=-1,
    without=["hold_capture_entry_iff_charged", "hold_only_captures_charge"],
)
update_case("hold_only_captures_charge", _captured_hold, status="released")


@case("billing_hold_capture_entry_id_key")
def _():
    first = _captured_hold()
    with refused("billing_hold_capture_entry_id_key"):
        _captured_hold(capture_entry=first.capture_entry)


# billing_outboxmessage, billing_reconciliationrun
update_case("billing_outboxmessage_attempts_check", f.OutboxMessageFactory, attempts=-1)
update_case("outbox_status_valid", f.OutboxMessageFactory, status="lost")
update_case("billing_reconciliationrun_discrepancy_count_check", f.ReconciliationRunFactory, discrepancy_count=-1)
update_case("billing_reconciliationrun_wallets_checked_check", f.ReconciliationRunFactory, wallets_checked=-1)
update_case("reconrun_status_valid", f.ReconciliationRunFactory, status="lost")


# billing_ledgercheckpoint, billing_ledgercheckpointhead
def _checkpoint(**kwargs):
    from billing.models import LedgerCheckpoint

    return LedgerCheckpoint.objects.create(key_id="test", digest="0" * 64, signature="0" * 64, **kwargs)


def _checkpoint_head(**kwargs):
    from billing.models import LedgerCheckpointHead

    return LedgerCheckpointHead.objects.create(
        checkpoint=kwargs.pop("checkpoint", None) or _checkpoint(), wallet_id=1, entry_count=1, head="0" * 64
    )


update_case("billing_ledgercheckpoint_entries_check", _checkpoint, entries=-1)
update_case("billing_ledgercheckpoint_wallets_check", _checkpoint, wallets=-1)
update_case("billing_ledgercheckpointhead_entry_count_check", _checkpoint_head, entry_count=-1)


@case("billing_ledgercheckpoint_run_id_key")
def _():
    run = f.ReconciliationRunFactory()
    _checkpoint(run=run)
    with refused("billing_ledgercheckpoint_run_id_key"):
        _checkpoint(run=run)


@case("checkpointhead_one_per_wallet")
def _():
    head = _checkpoint_head()
    with refused("checkpointhead_one_per_wallet"):
        _checkpoint_head(checkpoint=head.checkpoint)


# subscriptions_plan, subscriptions_subscription, subscriptions_allowancegrant (renamed from billing_*)
duplicate_by_update("plan_code_unique", f.PlanFactory, "code")
update_case("plan_allowance_non_negative", f.PlanFactory, monthly_allowance=-1)
update_case("plan_daily_limit_non_negative", f.PlanFactory, daily_limit=-1)
update_case("plan_trial_allowance_non_negative", f.PlanFactory, trial_allowance=-1)
update_case("plan_trial_daily_limit_non_negative", f.PlanFactory, trial_daily_limit=-1)
update_case("subscription_status_valid", f.SubscriptionFactory, status="paused")


@case("subscription_period_positive")
def _():
    subscription = f.SubscriptionFactory()
    with refused("subscription_period_positive"):
        type(subscription).objects.filter(pk=subscription.pk).update(
            current_period_end=subscription.current_period_start
        )


duplicate_by_insert("subscription_one_live_per_account", f.SubscriptionFactory, parents=["account", "plan"])


@case("subscription_stripe_id_unique")
def _():
    f.SubscriptionFactory(stripe_subscription_id="sub_1")
    other = f.SubscriptionFactory()
    with refused("subscription_stripe_id_unique"):
        type(other).objects.filter(pk=other.pk).update(stripe_subscription_id="sub_1")


update_case("allowance_amount_non_negative", f.AllowanceGrantFactory, amount=-1)
duplicate_by_insert("allowance_once_per_period", f.AllowanceGrantFactory, "period_start", parents=["subscription"])


@case("billing_allowancegrant_entry_id_key")
def _():
    first = f.AllowanceGrantFactory(entry=f.LedgerEntryFactory(), amount=10)
    next_period = first.period_end
    with refused("billing_allowancegrant_entry_id_key"):
        f.AllowanceGrantFactory(subscription=first.subscription, period_start=next_period, entry=first.entry, amount=10)


# billing_creditlot, billing_dailyusage, billing_dailylimitoverride
update_case("lot_amount_positive", f.CreditLotFactory, amount=0, remaining=0)
update_case("lot_remaining_non_negative", f.CreditLotFactory, remaining=-1)
update_case("lot_remaining_within_amount", f.CreditLotFactory, remaining=11)
duplicate_by_insert("lot_one_per_grant_entry", f.CreditLotFactory, parents=["entry"])
update_case("lot_source_valid", f.CreditLotFactory, source="bought")

# payments
update_case("pack_credits_positive", f.CreditPackFactory, credits=0)
update_case("pack_price_positive", f.CreditPackFactory, price_minor=0)
update_case(
    "payments_creditpack_price_minor_check", f.CreditPackFactory, price_minor=-1, without=["pack_price_positive"]
)
duplicate_by_update("payments_creditpack_public_id_key", f.CreditPackFactory, "public_id")
update_case("purchase_credits_positive", f.PurchaseFactory, credits=0)
update_case("purchase_clawed_back_non_negative", f.PurchaseFactory, clawed_back=-1)
update_case("purchase_unrecovered_non_negative", f.PurchaseFactory, unrecovered=-1)
update_case("purchase_status_valid", f.PurchaseFactory, status="lost")
update_case("purchase_kind_valid", f.PurchaseFactory, kind="gift")
update_case("purchase_dispute_status_valid", f.PurchaseFactory, dispute_status="pending")
update_case("payments_purchase_amount_minor_check", f.PurchaseFactory, amount_minor=-1)
update_case("payments_purchase_refunded_minor_check", f.PurchaseFactory, refunded_minor=-1)
duplicate_by_update("payments_purchase_public_id_key", f.PurchaseFactory, "public_id")


@case("purchase_payment_intent_unique")
def _():
    f.PurchaseFactory(stripe_payment_intent_id="pi_1")
    other = f.PurchaseFactory()
    with refused("purchase_payment_intent_unique"):
        type(other).objects.filter(pk=other.pk).update(stripe_payment_intent_id="pi_1")


@case("purchase_checkout_session_unique")
def _():
    f.PurchaseFactory(stripe_checkout_session_id="cs_1")
    other = f.PurchaseFactory()
    with refused("purchase_checkout_session_unique"):
        type(other).objects.filter(pk=other.pk).update(stripe_checkout_session_id="cs_1")


@case("purchase_one_recharge_in_flight")
def _():
    first = f.PurchaseFactory(kind="auto_recharge")
    with refused("purchase_one_recharge_in_flight"):
        f.PurchaseFactory(kind="auto_recharge", account=first.account, pack=first.pack)


@case("payments_purchase_grant_entry_id_key")
def _():
    entry = f.LedgerEntryFactory()
    f.PurchaseFactory(grant_entry=entry)
    other = f.PurchaseFactory()
    with refused("payments_purchase_grant_entry_id_key"):
        type(other).objects.filter(pk=other.pk).update(grant_entry=entry)


@case("payments_purchase_dispute_hold_id_key")
def _():
    hold = f.HoldFactory()
    f.PurchaseFactory(dispute_hold=hold)
    other = f.PurchaseFactory()
    with refused("payments_purchase_dispute_hold_id_key"):
        type(other).objects.filter(pk=other.pk).update(dispute_hold=hold)


update_case("stripe_event_status_valid", f.StripeEventFactory, status="lost")
update_case("payments_stripeevent_attempts_check", f.StripeEventFactory, attempts=-1)
update_case("payments_stripeevent_failures_check", f.StripeEventFactory, failures=-1)
duplicate_by_update("payments_stripeevent_stripe_id_key", f.StripeEventFactory, "stripe_id")
duplicate_by_update("payments_stripeobjectversion_stripe_id_key", f.StripeObjectVersionFactory, "stripe_id")
update_case("autorecharge_threshold_positive", f.AutoRechargeFactory, threshold=0)
update_case("autorecharge_amount_xor_target", f.AutoRechargeFactory, target=Decimal("500"))
update_case("payments_autorecharge_consecutive_failures_check", f.AutoRechargeFactory, consecutive_failures=-1)
update_case("payments_autorecharge_monthly_cap_minor_check", f.AutoRechargeFactory, monthly_cap_minor=-1)
duplicate_by_update("payments_autorecharge_wallet_id_key", f.AutoRechargeFactory, "wallet")
update_case("daily_usage_non_negative", f.DailyUsageFactory, used=-1)
duplicate_by_insert("daily_usage_one_per_wallet_day_v2", f.DailyUsageFactory, "day", parents=["wallet"])
update_case("daily_limit_override_non_negative", f.DailyLimitOverrideFactory, daily_limit=-1)
duplicate_by_insert("daily_limit_override_unique", f.DailyLimitOverrideFactory, parents=["account", "credit_type"])

# console (the dashboard's rollup)
update_case("console_ledgerday_entries_check", f.LedgerDayFactory, entries=-1)
duplicate_by_update("console_ledgerday_unique", f.LedgerDayFactory, "route")
update_case("console_walletday_entries_check", f.WalletDayFactory, entries=-1)
duplicate_by_update("console_walletday_unique", f.WalletDayFactory, "wallet_id", "account_id")
duplicate_by_update("console_walletwindow_wallet_id_key", f.WalletWindowFactory, "wallet_id", "account_id")
insert_case(
    "console_rollupstate_single_row",
    lambda **values: apps.get_model("console", "RollupState").objects.create(**{"pk": 1, **values}),
    pk=2,
)

# pricing_price (insert-only: violations are inserts)
insert_case("price_free_iff_all_zero", f.PriceRowFactory, is_free=True)
insert_case("price_unit_named", f.PriceRowFactory, per_unit=1)
insert_case("price_unit_prices_non_negative", f.PriceRowFactory, per_request=-1, per_1k_input_tokens=1)
insert_case("price_version_positive", f.PriceRowFactory, version=0)
# PositiveIntegerField's own CHECK (version >= 0); -1 breaks price_version_positive too.
insert_case("pricing_price_version_check", f.PriceRowFactory, version=-1, without=["price_version_positive"])
duplicate_by_insert("price_version_unique", f.PriceRowFactory, "key", "version", parents=["credit_type"])
duplicate_by_insert("price_public_id_unique", f.PriceRowFactory, "public_id")

# pricing: aliases, anomalies, the revision row
update_case("alias_not_self", f.ModelAliasFactory, alias="alias/self", target="alias/self")
duplicate_by_update("model_alias_unique", f.ModelAliasFactory, "alias")
duplicate_by_update("anomaly_public_id_unique", f.PricingAnomalyFactory, "public_id")
update_case("anomaly_resolved_attributed", f.PricingAnomalyFactory, resolved_at=now())


@case("pricing_revision_single_row")
def _():
    revision = apps.get_model("pricing", "CatalogueRevision")
    with refused("pricing_revision_single_row"):
        revision.objects.create(pk=2)


# refunds_refundlog (append-only: violations are inserts)


def _refund_entries(wallet) -> dict[str, object]:
    """A charge of 5 on `wallet` and its full refund: what a second log row needs."""
    charge = f.LedgerEntryFactory(wallet=wallet, kind="charge", amount=-5, balance_after=5)
    refund = f.LedgerEntryFactory(wallet=wallet, kind="refund", amount=5, balance_after=10, related_entry=charge)
    return {"charge": charge, "refund_entry": refund}


def refund_log_case(name: str, *, copy: Sequence[str] = (), **values: object) -> None:
    """A valid log row; then a second one, for a refund of its own, with `values` (or the first's `copy` fields)."""

    def run() -> None:
        first = f.RefundLogFactory()
        second = _refund_entries(first.charge.wallet) | {field: getattr(first, field) for field in copy}
        with refused(name):
            f.RefundLogFactory(**second, **values)

    case(name)(run)


refund_log_case("refundlog_amount_positive", amount=0)
refund_log_case("refundlog_reason_valid", reason="bored")
refund_log_case("refundlog_public_id_unique", copy=["public_id"])
refund_log_case("refunds_refundlog_refund_entry_id_key", copy=["charge", "refund_entry"])


@case("refundlog_one_actor")
def _():
    first = f.RefundLogFactory()
    actors = {"actor_api_key": f.ApiKeyFactory(), "actor_user": f.UserFactory()}
    second = _refund_entries(first.charge.wallet)
    with refused("refundlog_one_actor"):
        f.RefundLogFactory(**second, **actors)


# --- approvals ------------------------------------------------------------------------

duplicate_by_update("approval_public_id_unique", f.ApprovalRequestFactory, "public_id")
update_case("approval_kind_valid", f.ApprovalRequestFactory, kind="bogus")
update_case(
    "approval_status_valid", f.ApprovalRequestFactory, status="bogus", without=["approval_decision_matches_status"]
)
update_case("approval_amount_sign", f.ApprovalRequestFactory, amount=0)
update_case("approval_refund_names_charge", f.ApprovalRequestFactory, kind="refund")
update_case("approval_decision_matches_status", f.ApprovalRequestFactory, decided_at=timezone.now())
update_case("approval_threshold_non_negative", f.ApprovalThresholdFactory, threshold=-1)
duplicate_by_update("approvals_approvalthreshold_credit_type_id_key", f.ApprovalThresholdFactory, "credit_type")


@case("approval_four_eyes")
def _():
    user = f.UserFactory()
    with refused("approval_four_eyes"):
        f.ApprovalRequestFactory(requested_by=user, decided_by=user, status="rejected", decided_at=timezone.now())


@case("approvals_approvalrequest_ledger_entry_id_key")
def _():
    def approved(entry):
        return f.ApprovalRequestFactory(
            status="approved", decided_by=f.UserFactory(), decided_at=timezone.now(), ledger_entry=entry
        )

    first = approved(f.LedgerEntryFactory())
    with refused("approvals_approvalrequest_ledger_entry_id_key"):
        approved(first.ledger_entry)


@case("approvals_approvalrequest_refund_log_id_key")
def _():
    first = f.ApprovalRequestFactory(refund_log=f.RefundLogFactory())
    with refused("approvals_approvalrequest_refund_log_id_key"):
        f.ApprovalRequestFactory(refund_log=first.refund_log)


# --- triggers -------------------------------------------------------------------


def _update_and_delete_refused(trigger: str, row, *, match: str) -> None:
    """Both an UPDATE and a DELETE of `row` are refused by `trigger`."""
    rows = connection.ops.quote_name(type(row)._meta.db_table)
    with refused_by_trigger(trigger, match=rf"{match} \(UPDATE"):
        execute(f"UPDATE {rows} SET id = id WHERE id = %s", [row.pk])
    with refused_by_trigger(trigger, match=rf"{match} \(DELETE"):
        execute(f"DELETE FROM {rows} WHERE id = %s", [row.pk])


@case("billing_ledgerentry_append_only")
def _():
    _update_and_delete_refused(
        "billing_ledgerentry_append_only", f.LedgerEntryFactory(), match="ledger entries are append-only"
    )


@case("pricing_price_append_only")
def _():
    _update_and_delete_refused("pricing_price_append_only", f.PriceRowFactory(), match="price versions are insert-only")


@case("refunds_refundlog_append_only")
def _():
    _update_and_delete_refused(
        "refunds_refundlog_append_only", f.RefundLogFactory(), match="the refund log is append-only"
    )


@case("billing_ledgerentry_refund_within_charge")
def _():
    trigger = "billing_ledgerentry_refund_within_charge"
    charge = f.LedgerEntryFactory(kind="charge", amount=-5, balance_after=5)
    not_a_charge = f.LedgerEntryFactory(wallet=charge.wallet)
    another_wallets_charge = f.LedgerEntryFactory(kind="charge", amount=-5, balance_after=5)

    def refund(related_entry, amount="3"):
        return f.LedgerEntryFactory(
            wallet=charge.wallet, kind="refund", amount=Decimal(amount), related_entry=related_entry
        )

    with refused_by_trigger(trigger, match="must reference the charge", constraint="refund_references_charge"):
        refund(None)
    for wrong in (not_a_charge, another_wallets_charge):
        with refused_by_trigger(trigger, match="a charge of the same wallet", constraint="refund_references_charge"):
            refund(wrong)
    refund(charge)  # 3 of 5: accepted
    with refused_by_trigger(trigger, match="would exceed the charge", constraint="refund_within_charge"):
        refund(charge)  # 3 more would be 6 of 5


@case("approvals_approvalrequest_decided_is_final")
def _():
    trigger = "approvals_approvalrequest_decided_is_final"
    decided = f.ApprovalRequestFactory(status="rejected", decided_by=f.UserFactory(), decided_at=timezone.now())
    _update_and_delete_refused(trigger, decided, match="approval requests are kept and final once decided")
    pending = f.ApprovalRequestFactory()
    with refused_by_trigger(trigger, match=r"\(DELETE"):
        execute("DELETE FROM approvals_approvalrequest WHERE id = %s", [pending.pk])


# events_event, webhooks_*
duplicate_by_update("event_public_id_unique", f.EventFactory, "public_id")
duplicate_by_update("webhookendpoint_public_id_unique", f.WebhookEndpointFactory, "public_id")
duplicate_by_update("webhookdelivery_one_per_endpoint_event", f.WebhookDeliveryFactory, "endpoint", "event")


# --- the tests ------------------------------------------------------------------


def test_discovery_covers_this_repository_apps_only():
    tables = project_tables()
    assert {"accounts_account", "billing_ledgerentry", "pricing_price", "refunds_refundlog"} <= set(tables)
    assert not [name for name in tables if name.split("_")[0] in {"auth", "django", "admin", "contenttypes"}]
    kinds = {guard.kind for guard in database_guards()}
    assert kinds == {"check", "unique", "unique index", "trigger"}


def test_every_constraint_and_trigger_has_a_case():
    guards = database_guards()
    shared = sorted(name for name, count in Counter(guard.name for guard in guards).items() if count > 1)
    assert not shared, (
        f"Several constraints or triggers share a name; rename them so a case can tell them apart: {shared}"
    )
    missing = sorted((guard.table, guard.name, guard.kind) for guard in guards if guard.name not in CASES)
    assert not missing, "No case in tests/test_constraints.py for: " + "; ".join(
        f"{kind} {name} on {table}" for table, name, kind in missing
    )
    stale = sorted(set(CASES) - {guard.name for guard in guards})
    assert not stale, f"Cases for constraints or triggers the database no longer has (delete them): {stale}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_database_refuses(name):
    assert name in guards_by_name(), f"{name} is no longer in the database: delete its case"
    CASES[name]()
