"""Plans, subscriptions and allowance grants now live in the subscriptions app (state only).

Billing forgets the three models here and touches no table: subscriptions
0001, which depends on this migration, takes them over on the same tables
and renames those in place (`billing_plan` -> `subscriptions_plan`, ...).
No model left in billing refers to them (the daily limit reads plans
through a registered source, see billing/statements.py), so this needs
nothing of subscriptions, which sits above billing: no dependency on it,
no model of it named.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_credittype_moved_to_pricing"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                # Referring models first: a model's state may not outlive what it points at.
                migrations.DeleteModel(name="AllowanceGrant"),
                migrations.DeleteModel(name="Subscription"),
                migrations.DeleteModel(name="Plan"),
            ],
        ),
    ]
