"""Subscriptions: drop the indexes no query uses (docs/performance.md, "Indexes").

* A plan's credit type (plans are few; no query looks them up by credit type
  alone) and an allowance grant's subscription (`allowance_once_per_period`
  leads with it): dropped.
* The unique `code` becomes a named UniqueConstraint: its unique index stays,
  Django's LIKE index (varchar_pattern_ops) goes.

The database side is plain SQL (DROP INDEX, RENAME CONSTRAINT): nothing is
rebuilt and no foreign key is re-validated, whereas the AlterFields below,
run for real, would drop and re-create each foreign key (a full scan of its
table). The state side is exactly those AlterFields and AddConstraints. The
index names keep their `billing_` prefix: the tables were renamed in place
(0001).
"""

import django.db.models.deletion
from django.db import migrations, models

# Indexes dropped: (name, table, definition to re-create it on reverse).
DROPPED = [
    ("billing_allowancegrant_subscription_id_cd88d982", "subscriptions_allowancegrant", "(subscription_id)"),
    ("billing_plan_credit_type_id_f109ec49", "subscriptions_plan", "(credit_type_id)"),
    ("billing_plan_code_3f70aec3_like", "subscriptions_plan", "(code varchar_pattern_ops)"),
]

# Unique fields that became named UniqueConstraints: (table, old name, new name).
# The unique index stays and is renamed with its constraint.
RENAMED = [
    ("subscriptions_plan", "billing_plan_code_key", "plan_code_unique"),
]

FORWARD = [f"DROP INDEX {index}" for index, _, _ in DROPPED] + [
    f"ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}" for table, old, new in RENAMED
]
REVERSE = [f"ALTER TABLE {table} RENAME CONSTRAINT {new} TO {old}" for table, old, new in RENAMED] + [
    f"CREATE INDEX {index} ON {table} {definition}" for index, table, definition in DROPPED
]


class Migration(migrations.Migration):
    dependencies = [
        ("pricing", "0004_indexes_earn_their_keep"),
        ("subscriptions", "0001_plans_from_billing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name="allowancegrant",
                    name="subscription",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="allowance_grants",
                        to="subscriptions.subscription",
                    ),
                ),
                migrations.AlterField(
                    model_name="plan",
                    name="code",
                    field=models.SlugField(db_index=False, max_length=64),
                ),
                migrations.AlterField(
                    model_name="plan",
                    name="credit_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="plans",
                        to="pricing.credittype",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="plan",
                    constraint=models.UniqueConstraint(fields=("code",), name="plan_code_unique"),
                ),
            ],
        ),
    ]
