"""Accounts and API keys: drop the indexes no query uses (docs/performance.md, "Indexes").

* The unique `public_id`, `external_id` and `prefix` fields become named
  UniqueConstraints: their unique indexes stay, Django's LIKE indexes
  (varchar_pattern_ops) go: nothing searches these columns by prefix.
* `ApiKey.created_by` loses its index: deleting a user clears it with a scan
  of a small table.

The database side is plain SQL (DROP INDEX, RENAME CONSTRAINT): nothing is
rebuilt and no foreign key is re-validated, whereas the AlterFields below,
run for real, would drop and re-create each foreign key (a full scan of its
table). The state side is exactly those AlterFields and AddConstraints.
"""

import accounts.ids
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# Indexes dropped: (name, table, definition to re-create it on reverse).
DROPPED = [
    ("accounts_account_public_id_edbb1976_like", "accounts_account", "(public_id varchar_pattern_ops)"),
    ("accounts_account_external_id_9b040868_like", "accounts_account", "(external_id varchar_pattern_ops)"),
    ("accounts_apikey_prefix_2468c39f_like", "accounts_apikey", "(prefix varchar_pattern_ops)"),
    ("accounts_apikey_public_id_e1ad8676_like", "accounts_apikey", "(public_id varchar_pattern_ops)"),
    ("accounts_apikey_created_by_id_1b5317c8", "accounts_apikey", "(created_by_id)"),
]

# Unique fields that became named UniqueConstraints: (table, old name, new name).
# The unique index stays and is renamed with its constraint.
RENAMED = [
    ("accounts_account", "accounts_account_public_id_key", "account_public_id_unique"),
    ("accounts_account", "accounts_account_external_id_key", "account_external_id_unique"),
    ("accounts_apikey", "accounts_apikey_prefix_key", "apikey_prefix_unique"),
    ("accounts_apikey", "accounts_apikey_public_id_key", "apikey_public_id_unique"),
]

FORWARD = [f"DROP INDEX {index}" for index, _, _ in DROPPED] + [
    f"ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}" for table, old, new in RENAMED
]
REVERSE = [f"ALTER TABLE {table} RENAME CONSTRAINT {new} TO {old}" for table, old, new in RENAMED] + [
    f"CREATE INDEX {index} ON {table} {definition}" for index, table, definition in DROPPED
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, REVERSE)],
            state_operations=[
                migrations.AlterField(
                    model_name="account",
                    name="external_id",
                    field=models.CharField(help_text="The client app's own id for this user.", max_length=255),
                ),
                migrations.AlterField(
                    model_name="account",
                    name="public_id",
                    field=models.CharField(default=accounts.ids.account_id, editable=False, max_length=32),
                ),
                migrations.AlterField(
                    model_name="apikey",
                    name="created_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="apikey",
                    name="prefix",
                    field=models.CharField(editable=False, max_length=32),
                ),
                migrations.AlterField(
                    model_name="apikey",
                    name="public_id",
                    field=models.CharField(default=accounts.ids.api_key_id, editable=False, max_length=32),
                ),
                migrations.AddConstraint(
                    model_name="account",
                    constraint=models.UniqueConstraint(fields=("public_id",), name="account_public_id_unique"),
                ),
                migrations.AddConstraint(
                    model_name="account",
                    constraint=models.UniqueConstraint(fields=("external_id",), name="account_external_id_unique"),
                ),
                migrations.AddConstraint(
                    model_name="apikey",
                    constraint=models.UniqueConstraint(fields=("prefix",), name="apikey_prefix_unique"),
                ),
                migrations.AddConstraint(
                    model_name="apikey",
                    constraint=models.UniqueConstraint(fields=("public_id",), name="apikey_public_id_unique"),
                ),
            ],
        ),
    ]
