"""The refund log: drop the indexes no query uses (docs/performance.md, "Indexes").

* Account and credit type: `refundlog_account_created` and
  `refundlog_type_created` lead with them.
* The actor API key: keys are revoked, never deleted, and nothing looks refunds
  up by key. The actor user's full index becomes a partial one (not null): it
  serves Django's PROTECT check when a user is deleted, and API refunds,
  which have no user, no longer write it.
* The unique `public_id` becomes a named UniqueConstraint: its unique index
  stays, Django's LIKE index (varchar_pattern_ops) goes.

The database side is plain SQL (DROP INDEX, RENAME CONSTRAINT): nothing is
rebuilt and no foreign key is re-validated, whereas the AlterFields below,
run for real, would drop and re-create each foreign key (a full scan of its
table). The state side is exactly those AlterFields and AddConstraints.
"""

import django.db.models.deletion
import refunds.models
from django.conf import settings
from django.db import migrations, models

# Indexes dropped: (name, table, definition to re-create it on reverse).
DROPPED = [
    ("refunds_refundlog_account_id_dfc09bac", "refunds_refundlog", "(account_id)"),
    ("refunds_refundlog_credit_type_id_2a626cdf", "refunds_refundlog", "(credit_type_id)"),
    ("refunds_refundlog_actor_api_key_id_9bdfdcdb", "refunds_refundlog", "(actor_api_key_id)"),
    ("refunds_refundlog_actor_user_id_bf0fd9c9", "refunds_refundlog", "(actor_user_id)"),
    ("refunds_refundlog_public_id_d8cbb6be_like", "refunds_refundlog", "(public_id varchar_pattern_ops)"),
]

# Unique fields that became named UniqueConstraints: (table, old name, new name).
# The unique index stays and is renamed with its constraint.
RENAMED = [
    ("refunds_refundlog", "refunds_refundlog_public_id_key", "refundlog_public_id_unique"),
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
        ("billing", "0012_indexes_earn_their_keep"),
        ("pricing", "0004_indexes_earn_their_keep"),
        ("refunds", "0003_credittype_in_pricing"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name="refundlog",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="refunds",
                        to="accounts.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="refundlog",
                    name="actor_api_key",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.apikey",
                    ),
                ),
                migrations.AlterField(
                    model_name="refundlog",
                    name="actor_user",
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
                    model_name="refundlog",
                    name="credit_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="pricing.credittype",
                    ),
                ),
                migrations.AlterField(
                    model_name="refundlog",
                    name="public_id",
                    field=models.CharField(default=refunds.models.refund_public_id, editable=False, max_length=32),
                ),
                migrations.AddConstraint(
                    model_name="refundlog",
                    constraint=models.UniqueConstraint(fields=("public_id",), name="refundlog_public_id_unique"),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="refundlog",
            index=models.Index(
                condition=models.Q(("actor_user__isnull", False)), fields=["actor_user"], name="refundlog_actor_user"
            ),
        ),
    ]
