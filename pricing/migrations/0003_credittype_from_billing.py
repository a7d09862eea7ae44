"""Credit types move from billing to pricing, with their rows, ids and permissions.

Pricing defines credit types and their prices; billing keeps the wallets and
the ledger in them. Nothing is copied: the table is renamed.

* State: `pricing.CreditType` is created here (first under the old table
  name), pricing's foreign keys are re-pointed to it, and billing 0010 and
  refunds 0003 re-point theirs and delete `billing.CreditType`. These are
  state-only operations: a foreign key in PostgreSQL refers to the table,
  not its name, so every existing constraint follows the rename.
* Database: `billing_credittype` is renamed `pricing_credittype`. Its rows,
  ids, identity sequence, constraints and indexes stay as they are (the
  automatically named ones keep their `billing_credittype_` prefix, the same
  on a fresh database as on an old one).
* Content type: the `billing.credittype` row becomes `pricing.credittype`, so
  the permissions granted on credit types and the admin log keep pointing
  at it.

The table was created by billing 0001, and billing's migrations up to 0009
name it; hence the dependency on billing 0009, so that on a fresh database
the rename comes after all of them. The default `credits` credit type is
still made by billing 0002, before the move, on every fresh database.
"""

import django.db.models.deletion
from django.db import migrations, models


def _move_content_type(apps, schema_editor, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_types = ContentType.objects.using(schema_editor.connection.alias)
    moving = content_types.filter(app_label=source, model="credittype").first()
    if moving is None:
        return  # a fresh database: post_migrate creates the content type
    # One made for the target by an earlier run of post_migrate holds only
    # default permissions; the moving one holds what people were granted.
    content_types.filter(app_label=target, model="credittype").delete()
    moving.app_label = target
    moving.save(update_fields=["app_label"])


def content_type_to_pricing(apps, schema_editor):
    _move_content_type(apps, schema_editor, source="billing", target="pricing")


def content_type_to_billing(apps, schema_editor):
    _move_content_type(apps, schema_editor, source="pricing", target="billing")


class Migration(migrations.Migration):
    dependencies = [
        ("pricing", "0002_price_versions_append_only"),
        ("billing", "0009_lots_and_daily_usage_keyed_by_account"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="CreditType",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        ("code", models.SlugField(max_length=32, unique=True)),
                        ("name", models.CharField(max_length=100)),
                        (
                            "scale",
                            models.PositiveSmallIntegerField(
                                default=2, help_text="Decimal places amounts of this type may carry (0-9)."
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "db_table": "billing_credittype",
                        "ordering": ["code"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("scale__gte", 0), ("scale__lte", 9)), name="credittype_scale_0_9"
                            )
                        ],
                    },
                ),
                migrations.AlterField(
                    model_name="price",
                    name="credit_type",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="pricing.credittype"
                    ),
                ),
                migrations.AlterField(
                    model_name="pricinganomaly",
                    name="credit_type",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="pricing.credittype"
                    ),
                ),
            ],
        ),
        # The default table name, pricing_credittype: ALTER TABLE ... RENAME.
        migrations.AlterModelTable(name="credittype", table=None),
        migrations.RunPython(content_type_to_pricing, content_type_to_billing),
    ]
