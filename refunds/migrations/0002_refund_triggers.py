"""The database's backstop for refunds, and an append-only refund log.

`refunds.services.refund_issue` already checks, under the wallet lock, that a
refund fits what remains of its charge. These triggers make the database
refuse it too, whoever writes the row:

* BEFORE INSERT on billing_ledgerentry, for kind 'refund' only: the entry
  must point (related_entry) at a *charge* of the *same wallet*, and the
  refunds of that charge, this one included, may not exceed the charge.
  The trigger first locks the charge row (FOR NO KEY UPDATE, which does
  not conflict with the FK's KEY SHARE lock), so two concurrent refunds of
  one charge are serialised here even without the wallet lock; the sum is
  then read by a new statement, which sees the other's commit.
* BEFORE UPDATE OR DELETE on refunds_refundlog: the log is append-only, like
  the ledger. TRUNCATE (test runs, operators) is not covered.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION refunds_check_refund_entry() RETURNS trigger AS $$
DECLARE
    charge_kind varchar;
    charge_amount numeric;
    charge_wallet bigint;
    prior numeric;
BEGIN
    IF NEW.related_entry_id IS NULL THEN
        RAISE EXCEPTION 'a refund must reference the charge it refunds'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refund_references_charge';
    END IF;
    SELECT kind, amount, wallet_id INTO charge_kind, charge_amount, charge_wallet
        FROM billing_ledgerentry WHERE id = NEW.related_entry_id FOR NO KEY UPDATE;
    IF charge_kind IS DISTINCT FROM 'charge' OR charge_wallet IS DISTINCT FROM NEW.wallet_id THEN
        RAISE EXCEPTION 'a refund must reference a charge of the same wallet'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refund_references_charge';
    END IF;
    SELECT COALESCE(SUM(amount), 0) INTO prior FROM billing_ledgerentry
        WHERE related_entry_id = NEW.related_entry_id AND kind = 'refund';
    IF prior + NEW.amount > -charge_amount THEN
        RAISE EXCEPTION 'refunds would exceed the charge (% + % > %)', prior, NEW.amount, -charge_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refund_within_charge';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_ledgerentry_refund_within_charge
    BEFORE INSERT ON billing_ledgerentry
    FOR EACH ROW WHEN (NEW.kind = 'refund')
    EXECUTE FUNCTION refunds_check_refund_entry();

CREATE OR REPLACE FUNCTION refunds_refundlog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the refund log is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER refunds_refundlog_append_only
    BEFORE UPDATE OR DELETE ON refunds_refundlog
    FOR EACH ROW EXECUTE FUNCTION refunds_refundlog_append_only();
"""

PG_REVERSE = """
DROP TRIGGER IF EXISTS refunds_refundlog_append_only ON refunds_refundlog;
DROP FUNCTION IF EXISTS refunds_refundlog_append_only();
DROP TRIGGER IF EXISTS billing_ledgerentry_refund_within_charge ON billing_ledgerentry;
DROP FUNCTION IF EXISTS refunds_check_refund_entry();
"""


def forward(apps, schema_editor):
    schema_editor.execute(PG_FORWARD, params=None)


def reverse(apps, schema_editor):
    schema_editor.execute(PG_REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("refunds", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]
