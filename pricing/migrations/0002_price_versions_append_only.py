"""Price versions are insert-only, enforced by the database; and the revision row.

Every priced ledger entry points at the exact price version it was charged
with, so a version must never change after the fact: a BEFORE UPDATE OR
DELETE trigger on pricing_price refuses it. A price change is a new version
(`pricing.services.price_create`).

Also creates the one `CatalogueRevision` row whose stamp every catalogue
write changes (the cache freshness check).
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION pricing_price_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'price versions are insert-only (% refused on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER pricing_price_append_only
    BEFORE UPDATE OR DELETE ON pricing_price
    FOR EACH ROW EXECUTE FUNCTION pricing_price_append_only();
"""

PG_REVERSE = """
DROP TRIGGER IF EXISTS pricing_price_append_only ON pricing_price;
DROP FUNCTION IF EXISTS pricing_price_append_only();
"""


def forward(apps, schema_editor):
    schema_editor.execute(PG_FORWARD, params=None)


def reverse(apps, schema_editor):
    schema_editor.execute(PG_REVERSE)


def create_revision_row(apps, schema_editor):
    CatalogueRevision = apps.get_model("pricing", "CatalogueRevision")
    CatalogueRevision.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("pricing", "0001_initial")]

    operations = [
        migrations.RunPython(forward, reverse),
        migrations.RunPython(create_revision_row, migrations.RunPython.noop),
    ]
