"""The refund log's credit type is now `pricing.CreditType` (state only; see pricing 0003).

The database constraint already refers to the renamed table. This runs
before billing 0010, which deletes `billing.CreditType` from the state.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("refunds", "0002_refund_triggers"),
        ("pricing", "0003_credittype_from_billing"),
    ]
    run_before = [("billing", "0010_credittype_moved_to_pricing")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="refundlog",
                    name="credit_type",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="pricing.credittype"
                    ),
                ),
            ],
        ),
    ]
