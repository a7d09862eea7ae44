"""Billing: drop the indexes no query uses, above all on the ledger (docs/performance.md, "Indexes").

A plain charge's ledger INSERT wrote 13 index entries; it now writes 4 (one
more each for a task id, a related entry and a staff actor).

* Foreign-key indexes that a composite or unique index already leads with
  (wallet and override by account; the ledger's and holds' account; an
  allowance grant's subscription; a discrepancy's run), and those no query
  uses (by credit type, by wallet, by API key, by price version): dropped.
* `ledger_wallet_history`: no query reads the ledger by wallet.
* The full `related_entry_id` index: `ledger_related_entry` (partial, non-null)
  serves every query on it.
* The actor user's full index becomes a partial one (not null): it serves
  Django's PROTECT check when a user is deleted, and API rows, which have
  no user, no longer write it.
* The unique `public_id` and `code` fields become named UniqueConstraints:
  their unique indexes stay, Django's LIKE indexes (varchar_pattern_ops) go.

The database side is plain SQL (DROP INDEX, RENAME CONSTRAINT): nothing is
rebuilt and no foreign key is re-validated, whereas the AlterFields below,
run for real, would drop and re-create each foreign key (a full scan of its
table). The state side is exactly those AlterFields and AddConstraints.
"""

import billing.models
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Indexes dropped: (name, table, definition to re-create it on reverse).
DROPPED = [
    ("billing_ledgerentry_account_id_ac8d6a24", "billing_ledgerentry", "(account_id)"),
    ("billing_ledgerentry_wallet_id_d66e2707", "billing_ledgerentry", "(wallet_id)"),
    ("billing_ledgerentry_credit_type_id_4c24a218", "billing_ledgerentry", "(credit_type_id)"),
    ("billing_ledgerentry_related_entry_id_ee8fe1f9", "billing_ledgerentry", "(related_entry_id)"),
    ("billing_ledgerentry_actor_api_key_id_6af9a274", "billing_ledgerentry", "(actor_api_key_id)"),
    ("billing_ledgerentry_actor_user_id_51edabed", "billing_ledgerentry", "(actor_user_id)"),
    ("billing_ledgerentry_price_version_id_2b4fb87a", "billing_ledgerentry", "(price_version_id)"),
    ("billing_ledgerentry_public_id_ae7997a1_like", "billing_ledgerentry", "(public_id varchar_pattern_ops)"),
    ("billing_hold_account_id_56c002f9", "billing_hold", "(account_id)"),
    ("billing_hold_wallet_id_0763e881", "billing_hold", "(wallet_id)"),
    ("billing_hold_credit_type_id_cba600d9", "billing_hold", "(credit_type_id)"),
    ("billing_hold_actor_api_key_id_cb8cfae1", "billing_hold", "(actor_api_key_id)"),
    ("billing_hold_actor_user_id_29e64d82", "billing_hold", "(actor_user_id)"),
    ("billing_hold_public_id_6de88ebb_like", "billing_hold", "(public_id varchar_pattern_ops)"),
    ("billing_wallet_account_id_484108d4", "billing_wallet", "(account_id)"),
    ("billing_wallet_credit_type_id_1d87c4ce", "billing_wallet", "(credit_type_id)"),
    ("billing_idempotencyrecord_api_key_id_b832dda6", "billing_idempotencyrecord", "(api_key_id)"),
    ("billing_dailylimitoverride_account_id_88ff73f1", "billing_dailylimitoverride", "(account_id)"),
    ("billing_dailylimitoverride_credit_type_id_43f9acb6", "billing_dailylimitoverride", "(credit_type_id)"),
    ("billing_reconciliationdiscrepancy_run_id_aee626f5", "billing_reconciliationdiscrepancy", "(run_id)"),
]

# Unique fields that became named UniqueConstraints: (table, old name, new name).
# The unique index stays and is renamed with its constraint.
RENAMED = [
    ("billing_ledgerentry", "billing_ledgerentry_public_id_key", "ledger_public_id_unique"),
    ("billing_hold", "billing_hold_public_id_key", "hold_public_id_unique"),
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
        ("billing", "0011_plans_moved_to_subscriptions"),
        ("pricing", "0004_indexes_earn_their_keep"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name="dailylimitoverride",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="daily_limit_overrides",
                        to="accounts.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="dailylimitoverride",
                    name="credit_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="pricing.credittype",
                    ),
                ),
                migrations.AlterField(
                    model_name="hold",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="holds",
                        to="accounts.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="hold",
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
                    model_name="hold",
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
                    model_name="hold",
                    name="credit_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="pricing.credittype",
                    ),
                ),
                migrations.AlterField(
                    model_name="hold",
                    name="public_id",
                    field=models.CharField(default=billing.models.hold_public_id, editable=False, max_length=32),
                ),
                migrations.AlterField(
                    model_name="hold",
                    name="wallet",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="holds",
                        to="billing.wallet",
                    ),
                ),
                migrations.AlterField(
                    model_name="idempotencyrecord",
                    name="api_key",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.apikey",
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="ledger_entries",
                        to="accounts.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
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
                    model_name="ledgerentry",
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
                    model_name="ledgerentry",
                    name="credit_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="pricing.credittype",
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="price_version",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="ledger_entries",
                        to="pricing.price",
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="public_id",
                    field=models.CharField(default=billing.models.ledger_entry_id, editable=False, max_length=32),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="related_entry",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="related_entries",
                        to="billing.ledgerentry",
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="wallet",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="entries",
                        to="billing.wallet",
                    ),
                ),
                migrations.AlterField(
                    model_name="reconciliationdiscrepancy",
                    name="run",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="discrepancies",
                        to="billing.reconciliationrun",
                    ),
                ),
                migrations.AlterField(
                    model_name="wallet",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="wallets",
                        to="accounts.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="wallet",
                    name="credit_type",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="wallets",
                        to="pricing.credittype",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="hold",
                    constraint=models.UniqueConstraint(fields=("public_id",), name="hold_public_id_unique"),
                ),
                migrations.AddConstraint(
                    model_name="ledgerentry",
                    constraint=models.UniqueConstraint(fields=("public_id",), name="ledger_public_id_unique"),
                ),
            ],
        ),
        migrations.RemoveIndex(
            model_name="ledgerentry",
            name="ledger_wallet_history",
        ),
        migrations.AddIndex(
            model_name="hold",
            index=models.Index(
                condition=models.Q(("actor_user__isnull", False)), fields=["actor_user"], name="hold_actor_user"
            ),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                condition=models.Q(("actor_user__isnull", False)), fields=["actor_user"], name="ledger_actor_user"
            ),
        ),
    ]
