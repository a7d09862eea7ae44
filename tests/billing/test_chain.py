"""The tamper-evident ledger: what an attacker with the database can do, and how `reconcile` names it.

Each test plants one kind of tampering the way a superuser would, with SQL
(triggers disabled where the attack needs it: `session_replication_role =
replica` switches off every trigger, the append-only one included, for the
test's transaction), then asserts `manage.py reconcile` exits 2 and names the
wallet and the entry. The table is issue 13's: the first four were caught
before the hash chain, the last four were not.
"""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from billing import chain, statements
from billing.models import LedgerCheckpoint, LedgerEntry, ReconciliationRun, Wallet
from billing.services import (
    Actor,
    adjustment_create,
    charge_create,
    grant_create,
    hold_capture,
    hold_create,
    hold_release,
)
from refunds.services import refund_issue
from subscriptions.models import AllowanceGrant
from subscriptions.services import subscription_create
from tests.factories import PlanFactory, charge_for, default_credit_type, funded_account

pytestmark = pytest.mark.django_db

OLD_KEY = {"old": b"old-ledger-key-0123456789abcdef"}
NEW_KEY = {"new": b"new-ledger-key-0123456789abcdef"}


def wallet_of(account) -> Wallet:
    return Wallet.objects.get(account=account, credit_type=default_credit_type())


def reconcile(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def as_superuser_without_triggers() -> None:
    """Every trigger off for the rest of the test's transaction (append-only, refund-within-charge)."""
    sql("SET CONSTRAINTS ALL IMMEDIATE")
    sql("SET session_replication_role = replica")


def forge(entry: LedgerEntry, public_id: str, **changes) -> LedgerEntry:
    """INSERT a copy of `entry` with `changes` (column = value), as raw SQL: no key, so no valid hash."""
    columns = [f.column for f in LedgerEntry._meta.concrete_fields if f.column not in ("id", "public_id")]
    selected = [f"%s AS {c}" if c in changes else c for c in columns]
    params = [changes[c] for c in columns if c in changes]
    sql(
        f"INSERT INTO billing_ledgerentry ({', '.join(columns)}, public_id) "
        f"SELECT {', '.join(selected)}, %s FROM billing_ledgerentry WHERE id = %s",
        [*params, public_id, entry.pk],
    )
    return LedgerEntry.objects.get(public_id=public_id)


def names(out: str, wallet: Wallet, entry: LedgerEntry | None = None) -> bool:
    lines = [line for line in out.splitlines() if f"wallet={wallet.pk}" in line]
    return bool(lines) and (entry is None or any(f"entry={entry.public_id}" in line for line in lines))


def kinds() -> set[str]:
    return set(ReconciliationRun.objects.latest("id").discrepancies.values_list("kind", flat=True))


# --- issue 13's table, row by row -----------------------------------------------------------


def test_wallet_balance_changed_directly_is_named():
    account = funded_account("50.00")
    charge = charge_for(account, "5.00")
    sql("UPDATE billing_wallet SET balance = balance + 30 WHERE id = %s", [wallet_of(account).pk])
    code, out = reconcile()
    assert code == 2 and "balance_mismatch" in kinds()
    assert names(out, wallet_of(account), charge)  # the newest entry, where ledger and balance part


def test_entry_amount_edited_is_named():
    account = funded_account("50.00")
    charge = charge_for(account, "5.00")
    as_superuser_without_triggers()
    sql("UPDATE billing_ledgerentry SET amount = -4 WHERE id = %s", [charge.pk])
    code, out = reconcile()
    assert code == 2 and {"chain_broken", "balance_mismatch", "balance_after_mismatch"} <= kinds()
    assert names(out, wallet_of(account), charge)


def test_over_refund_inserted_is_named():
    account = funded_account("50.00")
    charge = charge_for(account, "5.00")
    refund = refund_issue(charge=charge, actor=Actor.system(), reason="timeout").refund_entry
    as_superuser_without_triggers()
    forged = forge(refund, "txn_forged_over_refund", amount=Decimal(20), balance_after=Decimal(70))
    sql("UPDATE billing_wallet SET balance = 70 WHERE id = %s", [wallet_of(account).pk])
    code, out = reconcile()
    assert code == 2 and {"over_refunded", "chain_broken", "refund_log_mismatch"} <= kinds()
    assert names(out, wallet_of(account), charge)  # over_refunded names the charge
    assert names(out, wallet_of(account), forged)  # chain_broken names the forged refund


def test_held_changed_is_named():
    account = funded_account("50.00")
    hold_create(account=account, credit_type=default_credit_type(), amount="5.00", actor=Actor.system())
    sql("UPDATE billing_wallet SET held = 1 WHERE id = %s", [wallet_of(account).pk])
    code, out = reconcile()
    assert code == 2 and kinds() == {"held_mismatch"}
    assert names(out, wallet_of(account))  # no entry moved: held is proven by the holds


def test_charge_shrunk_and_balance_raised_to_match_is_named():
    """-40 becomes -10 and the balance +30: every sum agrees, 30 credits invented; the hash does not."""
    account = funded_account("100.00")
    charge = charge_for(account, "40.00")
    later = charge_for(account, "1.00")
    as_superuser_without_triggers()
    sql("UPDATE billing_ledgerentry SET amount = -10, balance_after = 90 WHERE id = %s", [charge.pk])
    sql("UPDATE billing_ledgerentry SET balance_after = 89 WHERE id = %s", [later.pk])
    sql("UPDATE billing_wallet SET balance = 89 WHERE id = %s", [wallet_of(account).pk])
    code, out = reconcile()
    assert code == 2 and kinds() == {"chain_broken"}
    assert names(out, wallet_of(account), charge)
    assert names(out, wallet_of(account), later)  # its link covers the old hash of the edited charge


def test_forged_grant_with_matching_balance_bump_is_named():
    """A plain INSERT (no trigger stops it) and the balance raised to match: the forger has no key."""
    account = funded_account("10.00")
    grant = LedgerEntry.objects.get(account=account)
    forged = forge(grant, "txn_forged_grant", amount=Decimal(500), balance_after=Decimal(510))
    sql("UPDATE billing_wallet SET balance = 510 WHERE id = %s", [wallet_of(account).pk])
    code, out = reconcile()
    assert code == 2 and kinds() == {"chain_broken"}  # the copied hash even matches the head: not the link
    assert names(out, wallet_of(account), forged)


def test_refund_log_amount_raised_is_named():
    account = funded_account("50.00")
    charge = charge_for(account, "5.00")
    log = refund_issue(charge=charge, actor=Actor.system(), reason="timeout", amount="2.00")
    as_superuser_without_triggers()  # the refund log is append-only too
    sql("UPDATE refunds_refundlog SET amount = 5 WHERE id = %s", [log.pk])
    code, out = reconcile()
    assert code == 2 and kinds() == {"refund_log_mismatch"}
    assert names(out, wallet_of(account), log.refund_entry)


def test_one_balance_after_changed_is_named():
    account = funded_account("50.00")
    charge = charge_for(account, "5.00")
    as_superuser_without_triggers()
    sql("UPDATE billing_ledgerentry SET balance_after = 44 WHERE id = %s", [charge.pk])
    code, out = reconcile()
    assert code == 2 and {"chain_broken", "balance_after_mismatch"} <= kinds()
    assert names(out, wallet_of(account), charge)


# --- the rest of what reconcile proves --------------------------------------------------------


def test_refund_entry_without_its_log_is_named():
    account = funded_account("50.00")
    log = refund_issue(charge=charge_for(account, "5.00"), actor=Actor.system(), reason="timeout")
    as_superuser_without_triggers()
    sql("DELETE FROM refunds_refundlog WHERE id = %s", [log.pk])
    code, out = reconcile()
    assert code == 2 and kinds() == {"refund_log_mismatch"}
    assert names(out, wallet_of(account), log.refund_entry)


def test_allowance_grant_amount_edited_is_named():
    account = funded_account("1.00")
    plan = PlanFactory(credit_type=default_credit_type())
    subscription_create(account=account, plan=plan)
    grant = AllowanceGrant.objects.get(subscription__account=account)
    sql("UPDATE subscriptions_allowancegrant SET amount = 1000 WHERE id = %s", [grant.pk])
    code, out = reconcile()
    assert code == 2 and kinds() == {"allowance_mismatch"}
    assert names(out, wallet_of(account), grant.entry)


def test_every_kind_of_posting_chains_and_verifies():
    account = funded_account("100.00")
    credit_type = default_credit_type()
    charge = charge_create(account=account, credit_type=credit_type, amount="3.00", actor=Actor.system())
    refund_issue(charge=charge, actor=Actor.system(), reason="timeout", amount="1.00")
    adjustment_create(account=account, credit_type=credit_type, amount="-2.00", actor=Actor.system(), reason="fix")
    hold = hold_create(account=account, credit_type=credit_type, amount="5.00", actor=Actor.system())
    hold_capture(hold=hold, amount="4.00", actor=Actor.system())
    hold_release(
        hold=hold_create(account=account, credit_type=credit_type, amount="1.00", actor=Actor.system()),
        actor=Actor.system(),
    )
    grant_create(account=account, credit_type=credit_type, amount=Decimal(5), reason="promo", actor=Actor.system())
    entries = list(LedgerEntry.objects.filter(account=account).order_by("id"))
    assert all(e.key_id == "test" and len(e.entry_hash) == 64 for e in entries)
    assert wallet_of(account).chain_head == entries[-1].entry_hash
    assert reconcile()[0] == 0


# --- checkpoints against rollback ----------------------------------------------------------


def roll_back_newest(account) -> LedgerEntry:
    """Delete the wallet's newest entry and set the wallet back consistently: the chain that is left verifies."""
    entries = list(LedgerEntry.objects.filter(account=account).order_by("id"))
    newest, survivor = entries[-1], entries[-2]
    as_superuser_without_triggers()
    sql("DELETE FROM billing_ledgerentry WHERE id = %s", [newest.pk])
    sql(
        "UPDATE billing_wallet SET balance = %s, chain_head = %s WHERE id = %s",
        [survivor.balance_after, survivor.entry_hash, wallet_of(account).pk],
    )
    return newest


def test_a_consistent_rollback_verifies_without_a_checkpoint():
    account = funded_account("50.00")
    charge_for(account, "5.00")
    roll_back_newest(account)
    assert reconcile()[0] == 0  # why checkpoints exist


def test_rollback_after_a_stored_checkpoint_is_drift():
    account = funded_account("50.00")
    charge_for(account, "5.00")
    assert reconcile()[0] == 0  # a clean full run stores a checkpoint
    assert LedgerCheckpoint.objects.get().heads.get(wallet_id=wallet_of(account).pk).entry_count == 2
    roll_back_newest(account)
    code, out = reconcile()
    assert code == 2 and kinds() == {"checkpoint_regressed"}
    assert names(out, wallet_of(account)) and "had 2 entries; it now has 1" in out


def test_rollback_then_new_entries_after_a_checkpoint_is_drift_at_the_position():
    account = funded_account("50.00")
    charge_for(account, "5.00")
    assert reconcile()[0] == 0
    roll_back_newest(account)
    sql("SET session_replication_role = origin")
    replacement = charge_for(account, "1.00")  # the chain grows back past the checkpoint's length
    code, out = reconcile()
    assert code == 2 and kinds() == {"checkpoint_regressed"}
    assert names(out, wallet_of(account), replacement)


def test_rollback_against_a_supplied_checkpoint_file_is_drift_when_the_stored_ones_are_gone(tmp_path):
    account = funded_account("50.00")
    charge_for(account, "5.00")
    out = StringIO()
    call_command("ledger_checkpoint", stdout=out, stderr=StringIO())
    path = tmp_path / "checkpoint.json"
    path.write_text(out.getvalue())
    roll_back_newest(account)
    LedgerCheckpoint.objects.all().delete()  # the attacker removes what the database kept
    assert reconcile()[0] == 0
    code, out = reconcile("--checkpoint", str(path))
    assert code == 2 and kinds() == {"checkpoint_regressed"}
    assert names(out, wallet_of(account)) and "supplied checkpoint" in out


def test_a_checkpoint_file_edited_is_refused(tmp_path):
    funded_account("50.00")
    out = StringIO()
    call_command("ledger_checkpoint", stdout=out, stderr=StringIO())
    document = json.loads(out.getvalue())
    document["heads"][0][1] += 1
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match="Checkpoint refused"):
        call_command("reconcile", "--checkpoint", str(path), stdout=StringIO())


def test_a_stored_checkpoint_edited_is_drift():
    funded_account("50.00")
    assert reconcile()[0] == 0
    sql("UPDATE billing_ledgercheckpointhead SET entry_count = 7")
    code, out = reconcile()
    assert code == 2 and kinds() == {"checkpoint_regressed"} and "Stored checkpoint rejected" in out


# --- keys -------------------------------------------------------------------------------------


def test_entries_signed_under_an_old_key_still_verify_after_a_new_key_becomes_current():
    with override_settings(CREDITLEDGER_LEDGER_KEYS=OLD_KEY, CREDITLEDGER_LEDGER_KEY_ID="old"):
        account = funded_account("50.00")
        charge_for(account, "5.00")
    with override_settings(CREDITLEDGER_LEDGER_KEYS={**NEW_KEY, **OLD_KEY}, CREDITLEDGER_LEDGER_KEY_ID="new"):
        charge_for(account, "1.00")
        assert list(LedgerEntry.objects.filter(account=account).order_by("id").values_list("key_id", flat=True)) == [
            "old",
            "old",
            "new",
        ]
        assert reconcile()[0] == 0


def test_an_entry_signed_with_a_key_no_longer_configured_is_named():
    with override_settings(CREDITLEDGER_LEDGER_KEYS=OLD_KEY, CREDITLEDGER_LEDGER_KEY_ID="old"):
        account = funded_account("50.00")
    with override_settings(CREDITLEDGER_LEDGER_KEYS=NEW_KEY, CREDITLEDGER_LEDGER_KEY_ID="new"):
        code, out = reconcile()
    assert code == 2 and kinds() == {"chain_broken"}
    assert names(out, wallet_of(account), LedgerEntry.objects.get(account=account)) and "'old'" in out


def test_the_database_recomputes_exactly_the_hash_python_signed():
    account = funded_account("12.34")
    charge = charge_create(
        account=account, credit_type=default_credit_type(), amount="0.01", actor=Actor.system(), task_id="t"
    )
    key_ids, inner, outer = chain.verifying_keys()
    hashes = statements.ledger_entry_hashes(entry_ids=[charge.pk], key_ids=key_ids, inner=inner, outer=outer)
    assert hashes == {charge.pk: charge.entry_hash}
