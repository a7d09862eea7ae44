"""Pricing: drop the indexes no query uses (docs/performance.md, "Indexes").

* Prices: the credit type (both composite indexes carry it after the key; no
  query looks prices up by credit type alone) and `created_by` (deleting a
  user checks it with a scan of a small table).
* Anomalies: account, credit type and price version (no query uses them).
* The unique `public_id` and `alias` fields become named UniqueConstraints:
  their unique indexes stay, Django's LIKE indexes (varchar_pattern_ops) go.

The database side is plain SQL (DROP INDEX, RENAME CONSTRAINT): nothing is
rebuilt and no foreign key is re-validated, whereas the AlterFields below,
run for real, would drop and re-create each foreign key (a full scan of its
table). The state side is exactly those AlterFields and AddConstraints.
"""

import django.db.models.deletion
import pricing.models
from django.conf import settings
from django.db import migrations, models

# Indexes dropped: (name, table, definition to re-create it on reverse).
DROPPED = [
    ("pricing_price_credit_type_id_97dfb605", "pricing_price", "(credit_type_id)"),
    ("pricing_price_created_by_id_5f44f56a", "pricing_price", "(created_by_id)"),
    ("pricing_price_public_id_dde2ae5f_like", "pricing_price", "(public_id varchar_pattern_ops)"),
    ("pricing_modelalias_alias_0216294a_like", "pricing_modelalias", "(alias varchar_pattern_ops)"),
    ("pricing_pricinganomaly_account_id_fd710d36", "pricing_pricinganomaly", "(account_id)"),
    ("pricing_pricinganomaly_credit_type_id_4956602d", "pricing_pricinganomaly", "(credit_type_id)"),
    ("pricing_pricinganomaly_price_version_id_456332b0", "pricing_pricinganomaly", "(price_version_id)"),
    ("pricing_pricinganomaly_public_id_16f25c33_like", "pricing_pricinganomaly", "(public_id varchar_pattern_ops)"),
]

# Unique fields that became named UniqueConstraints: (table, old name, new name).
# The unique index stays and is renamed with its constraint.
RENAMED = [
    ("pricing_price", "pricing_price_public_id_key", "price_public_id_unique"),
    ("pricing_modelalias", "pricing_modelalias_alias_key", "model_alias_unique"),
    ("pricing_pricinganomaly", "pricing_pricinganomaly_public_id_key", "anomaly_public_id_unique"),
]

FORWARD = [f"DROP INDEX {index}" for index, _, _ in DROPPED] + [
    f"ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}" for table, old, new in RENAMED
]
REVERSE = [f"ALTER TABLE {table} RENAME CONSTRAINT {new} TO {old}" for table, old, new in RENAMED] + [
    f"CREATE INDEX {index} ON {table} {definition}" for index, table, definition in DROPPED
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_indexes_earn_their_keep"),
        ("pricing", "0003_credittype_from_billing"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name="modelalias",
                    name="alias",
                    field=models.CharField(max_length=200, validators=[pricing.models.validate_key]),
                ),
                migrations.AlterField(
                    model_name="price",
                    name="created_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="price",
                    name="credit_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="pricing.credittype",
                    ),
                ),
                migrations.AlterField(
                    model_name="price",
                    name="public_id",
                    field=models.CharField(default=pricing.models.price_public_id, editable=False, max_length=32),
                ),
                migrations.AlterField(
                    model_name="pricinganomaly",
                    name="account",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="pricinganomaly",
                    name="credit_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="pricing.credittype",
                    ),
                ),
                migrations.AlterField(
                    model_name="pricinganomaly",
                    name="price_version",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="pricing.price",
                    ),
                ),
                migrations.AlterField(
                    model_name="pricinganomaly",
                    name="public_id",
                    field=models.CharField(default=pricing.models.anomaly_public_id, editable=False, max_length=32),
                ),
                migrations.AddConstraint(
                    model_name="modelalias",
                    constraint=models.UniqueConstraint(fields=("alias",), name="model_alias_unique"),
                ),
                migrations.AddConstraint(
                    model_name="price",
                    constraint=models.UniqueConstraint(fields=("public_id",), name="price_public_id_unique"),
                ),
                migrations.AddConstraint(
                    model_name="pricinganomaly",
                    constraint=models.UniqueConstraint(fields=("public_id",), name="anomaly_public_id_unique"),
                ),
            ],
        ),
    ]
