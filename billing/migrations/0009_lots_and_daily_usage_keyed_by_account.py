"""Grant lots and daily usage carry their wallet's account, and their unique keys include it.

So that every table of the money path can be distributed by account
(docs/operations.md, "Scaling out"). Existing rows are filled from their wallet.
"""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """
UPDATE billing_creditlot AS lot SET account_id = wallet.account_id
FROM billing_wallet AS wallet WHERE wallet.id = lot.wallet_id AND lot.account_id IS NULL;
UPDATE billing_dailyusage AS day_usage SET account_id = wallet.account_id
FROM billing_wallet AS wallet WHERE wallet.id = day_usage.wallet_id AND day_usage.account_id IS NULL;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("billing", "0008_idempotency_key_per_account"),
    ]

    operations = [
        migrations.AddField(
            model_name="creditlot",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="accounts.account",
            ),
        ),
        migrations.AddField(
            model_name="dailyusage",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="accounts.account",
            ),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="creditlot",
            name="account",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="accounts.account"
            ),
        ),
        migrations.AlterField(
            model_name="dailyusage",
            name="account",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="accounts.account"
            ),
        ),
        migrations.RemoveConstraint(model_name="dailyusage", name="daily_usage_one_per_wallet_day"),
        migrations.AddConstraint(
            model_name="dailyusage",
            constraint=models.UniqueConstraint(
                fields=("account", "wallet", "day"), name="daily_usage_one_per_wallet_day_v2"
            ),
        ),
        migrations.AlterField(
            model_name="creditlot",
            name="entry",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="billing.ledgerentry"
            ),
        ),
        migrations.AddConstraint(
            model_name="creditlot",
            constraint=models.UniqueConstraint(fields=("account", "entry"), name="lot_one_per_grant_entry"),
        ),
    ]
