"""`CreditType` now lives in pricing: billing's foreign keys point there (state only).

pricing 0003 renamed the table and created `pricing.CreditType`; the
database constraints already refer to the renamed table, so nothing here
touches the database. refunds 0003 re-points the refund log first, so no
model refers to `billing.CreditType` when it is deleted from the state.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_lots_and_daily_usage_keyed_by_account"),
        ("pricing", "0003_credittype_from_billing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="wallet",
                    name="credit_type",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="wallets", to="pricing.credittype"
                    ),
                ),
                migrations.AlterField(
                    model_name="ledgerentry",
                    name="credit_type",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="pricing.credittype"
                    ),
                ),
                migrations.AlterField(
                    model_name="hold",
                    name="credit_type",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="pricing.credittype"
                    ),
                ),
                migrations.AlterField(
                    model_name="plan",
                    name="credit_type",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="plans", to="pricing.credittype"
                    ),
                ),
                migrations.AlterField(
                    model_name="dailylimitoverride",
                    name="credit_type",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="pricing.credittype"
                    ),
                ),
                migrations.DeleteModel(name="CreditType"),
            ],
        ),
    ]
