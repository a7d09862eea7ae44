"""The audit trail is append-only, enforced by the database.

A BEFORE UPDATE OR DELETE trigger on auditlog's table refuses any change to a
recorded row, as the ledger's does (billing 0002): nobody edits or deletes
the trail, not through the admin (which offers neither) and not with SQL
short of dropping the trigger. One consequence: a staff user who has acted
cannot be deleted (the row's actor would be set to NULL); deactivate them
instead. tests/audit/test_append_only.py proves both refusals.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_logentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only (% refused on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_logentry_append_only
    BEFORE UPDATE OR DELETE ON auditlog_logentry
    FOR EACH ROW EXECUTE FUNCTION audit_logentry_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS audit_logentry_append_only ON auditlog_logentry;
DROP FUNCTION IF EXISTS audit_logentry_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("auditlog", "0017_add_actor_email")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
