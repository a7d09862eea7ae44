"""The ledger is append-only, enforced by the database; and the default credit type.

A BEFORE UPDATE OR DELETE row trigger on billing_ledgerentry raises
`ledger entries are append-only`. TRUNCATE is not covered: it is an
operator's (or a test run's) tool, not something application code can issue.

Corrections are new entries (kind `adjustment`), never edits.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION billing_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only (% refused on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only();
"""

PG_REVERSE = """
DROP TRIGGER IF EXISTS billing_ledgerentry_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS billing_ledger_append_only();
"""


def forward(apps, schema_editor):
    schema_editor.execute(PG_FORWARD, params=None)


def reverse(apps, schema_editor):
    schema_editor.execute(PG_REVERSE)


def create_default_credit_type(apps, schema_editor):
    CreditType = apps.get_model("billing", "CreditType")
    CreditType.objects.get_or_create(code="credits", defaults={"name": "Credits", "scale": 2})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        migrations.RunPython(forward, reverse),
        migrations.RunPython(create_default_credit_type, migrations.RunPython.noop),
    ]
