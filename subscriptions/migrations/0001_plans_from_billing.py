"""Plans, subscriptions and allowance grants move from billing to here, with their rows, ids and permissions.

Nothing is copied: the tables are renamed, the way pricing 0003 moved
`CreditType`.

* State: billing 0011 forgot the three models; they are created here, first
  under their old table names, pointing down at `accounts.Account`,
  `pricing.CreditType` and `billing.LedgerEntry` as before. Nothing in billing
  points at them. State only: a foreign key in PostgreSQL refers to the
  table, not its name, so every constraint follows the rename.
* Database: `billing_plan`, `billing_subscription` and
  `billing_allowancegrant` are renamed `subscriptions_plan`,
  `subscriptions_subscription` and `subscriptions_allowancegrant`. Rows, ids,
  identity sequences, constraints and indexes stay as they are (the
  automatically named ones keep their `billing_` prefix, the same on a fresh
  database as on an old one).
* Content types: `billing.plan`, `billing.subscription` and
  `billing.allowancegrant` become `subscriptions.*`, so the permissions
  granted on them and the admin log keep pointing at them.

Reversible: backwards, the content types go back to billing, the tables get
their old names, and billing 0011 (unapplied next) gives billing the models
back.
"""

from decimal import Decimal

import django.db.models.deletion
from django.db import migrations, models

MODELS = ["plan", "subscription", "allowancegrant"]


def _move_content_types(apps, schema_editor, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_types = ContentType.objects.using(schema_editor.connection.alias)
    for model in MODELS:
        moving = content_types.filter(app_label=source, model=model).first()
        if moving is None:
            continue  # a fresh database: post_migrate creates the content type
        # One made for the target by an earlier run of post_migrate holds only
        # default permissions; the moving one holds what people were granted.
        content_types.filter(app_label=target, model=model).delete()
        moving.app_label = target
        moving.save(update_fields=["app_label"])


def content_types_to_subscriptions(apps, schema_editor):
    _move_content_types(apps, schema_editor, source="billing", target="subscriptions")


def content_types_to_billing(apps, schema_editor):
    _move_content_types(apps, schema_editor, source="subscriptions", target="billing")


def money(**kwargs):
    return models.DecimalField(decimal_places=9, max_digits=28, **kwargs)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
        ("pricing", "0003_credittype_from_billing"),
        ("billing", "0011_plans_moved_to_subscriptions"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Plan",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        ("code", models.SlugField(max_length=64, unique=True)),
                        ("name", models.CharField(max_length=255)),
                        (
                            "monthly_allowance",
                            money(default=Decimal("0"), help_text="Granted at the start of each paid period."),
                        ),
                        (
                            "daily_limit",
                            money(
                                blank=True,
                                null=True,
                                help_text="Most a paid subscriber may spend per day; empty: none.",
                            ),
                        ),
                        ("trial_allowance", money(default=Decimal("0"), help_text="Granted at the start of a trial period.")),
                        (
                            "trial_daily_limit",
                            money(blank=True, null=True, help_text="Daily limit while trialing; empty: none."),
                        ),
                        (
                            "allowance_expires",
                            models.BooleanField(
                                default=True,
                                help_text="An allowance left unused at the end of its period expires (no rollover).",
                            ),
                        ),
                        (
                            "is_active",
                            models.BooleanField(default=True, help_text="Inactive plans take no new subscriptions."),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "credit_type",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="plans",
                                to="pricing.credittype",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_plan",
                        "ordering": ["code"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("monthly_allowance__gte", 0)), name="plan_allowance_non_negative"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("trial_allowance__gte", 0)),
                                name="plan_trial_allowance_non_negative",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("daily_limit__isnull", True), ("daily_limit__gte", 0), _connector="OR"),
                                name="plan_daily_limit_non_negative",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("trial_daily_limit__isnull", True), ("trial_daily_limit__gte", 0), _connector="OR"
                                ),
                                name="plan_trial_daily_limit_non_negative",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Subscription",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("trialing", "Trialing"),
                                    ("active", "Active"),
                                    ("past_due", "Past due"),
                                    ("canceled", "Canceled"),
                                ],
                                default="active",
                                max_length=16,
                            ),
                        ),
                        ("current_period_start", models.DateTimeField()),
                        ("current_period_end", models.DateTimeField()),
                        (
                            "trial_end",
                            models.DateTimeField(
                                blank=True, help_text="Informational; trial is the status alone.", null=True
                            ),
                        ),
                        ("canceled_at", models.DateTimeField(blank=True, null=True)),
                        ("stripe_customer_id", models.CharField(blank=True, default="", max_length=255)),
                        ("stripe_subscription_id", models.CharField(blank=True, default="", max_length=255)),
                        ("metadata", models.JSONField(blank=True, default=dict)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="subscriptions",
                                to="accounts.account",
                            ),
                        ),
                        (
                            "plan",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="subscriptions",
                                to="subscriptions.plan",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_subscription",
                        "ordering": ["-id"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("status__in", ["trialing", "active"])),
                                fields=["current_period_end"],
                                name="subscription_renewal_due",
                            ),
                        ],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("status__in", ["trialing", "active", "past_due", "canceled"])),
                                name="subscription_status_valid",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("current_period_end__gt", models.F("current_period_start"))),
                                name="subscription_period_positive",
                            ),
                            models.UniqueConstraint(
                                condition=models.Q(("status", "canceled"), _negated=True),
                                fields=("account",),
                                name="subscription_one_live_per_account",
                            ),
                            models.UniqueConstraint(
                                condition=models.Q(("stripe_subscription_id", ""), _negated=True),
                                fields=("stripe_subscription_id",),
                                name="subscription_stripe_id_unique",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="AllowanceGrant",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
                        ),
                        ("period_start", models.DateTimeField()),
                        ("period_end", models.DateTimeField()),
                        ("amount", money(default=Decimal("0"))),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "entry",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="allowance_grant",
                                to="billing.ledgerentry",
                            ),
                        ),
                        (
                            "subscription",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="allowance_grants",
                                to="subscriptions.subscription",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_allowancegrant",
                        "ordering": ["-id"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("subscription", "period_start"), name="allowance_once_per_period"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("amount__gte", 0)), name="allowance_amount_non_negative"
                            ),
                        ],
                    },
                ),
            ],
        ),
        # The default table names, subscriptions_*: ALTER TABLE ... RENAME.
        migrations.AlterModelTable(name="plan", table=None),
        migrations.AlterModelTable(name="subscription", table=None),
        migrations.AlterModelTable(name="allowancegrant", table=None),
        migrations.RunPython(content_types_to_subscriptions, content_types_to_billing),
    ]
