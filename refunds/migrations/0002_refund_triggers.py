"""The database's backstop for refunds, and an append-only refund log.

`refunds.services.refund_issue` already checks, under the wallet lock, that a
refund fits what remains of its charge. These triggers make the database
refuse it too, whoever writes the row:

* BEFORE INSERT on billing_ledgerentry, for kind 'refund' only: the entry
  must point (related_entry) at a *charge* of the *same wallet*, and the
  refunds of that charge, this one included, may not exceed the charge.
  On PostgreSQL the trigger first locks the charge row (FOR NO KEY UPDATE,
  which does not conflict with the FK's KEY SHARE lock), so two concurrent
  refunds of one charge are serialised here even without the wallet lock;
  the sum is then read by a new statement, which sees the other's commit.
* BEFORE UPDATE OR DELETE on refunds_refundlog: the log is append-only, like
  the ledger. TRUNCATE (test runs, operators) is not covered.

SQLite (the `make run` default) gets equivalent triggers without the lock:
SQLite runs IMMEDIATE transactions, which serialise writers anyway.
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

SQLITE_FORWARD = [
    """CREATE TRIGGER billing_ledgerentry_refund_within_charge BEFORE INSERT ON billing_ledgerentry
       WHEN NEW.kind = 'refund'
       BEGIN
         SELECT RAISE(ABORT, 'a refund must reference a charge of the same wallet')
           WHERE NOT EXISTS (SELECT 1 FROM billing_ledgerentry c WHERE c.id = NEW.related_entry_id
                             AND c.kind = 'charge' AND c.wallet_id = NEW.wallet_id);
         SELECT RAISE(ABORT, 'refunds would exceed the charge')
           WHERE (SELECT COALESCE(SUM(r.amount), 0) FROM billing_ledgerentry r
                  WHERE r.related_entry_id = NEW.related_entry_id AND r.kind = 'refund') + NEW.amount
                 > (SELECT -c.amount FROM billing_ledgerentry c WHERE c.id = NEW.related_entry_id);
       END;""",
    """CREATE TRIGGER refunds_refundlog_no_update BEFORE UPDATE ON refunds_refundlog
       BEGIN SELECT RAISE(ABORT, 'the refund log is append-only'); END;""",
    """CREATE TRIGGER refunds_refundlog_no_delete BEFORE DELETE ON refunds_refundlog
       BEGIN SELECT RAISE(ABORT, 'the refund log is append-only'); END;""",
]

SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS refunds_refundlog_no_delete;",
    "DROP TRIGGER IF EXISTS refunds_refundlog_no_update;",
    "DROP TRIGGER IF EXISTS billing_ledgerentry_refund_within_charge;",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("refunds", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]
