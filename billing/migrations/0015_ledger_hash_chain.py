"""The ledger's hash chain (billing/chain.py) and signed checkpoints (billing/checkpoints.py).

Adds `LedgerEntry.key_id` / `entry_hash` and `Wallet.chain_head`, then chains
every existing entry, wallet by wallet in id order, with the current
`CREDITLEDGER_LEDGER_KEY`. The append-only trigger is disabled for that one
UPDATE and enabled again in the same transaction. Reversing drops the columns.
"""


import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

_BATCH = 5000


def chain_existing_entries(apps, schema_editor):
    from billing import chain  # the live signing code: the chain must match what new entries get

    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    Wallet = apps.get_model("billing", "Wallet")
    ledger, wallets = LedgerEntry._meta.db_table, Wallet._meta.db_table
    connection = schema_editor.connection
    key_id = chain.current_key_id()
    fields = (
        "id, wallet_id, public_id, account_id, credit_type_id, kind, amount, balance_after, "
        "related_entry_id, actor_api_key_id, actor_user_id, created_at"
    )
    entries: list[tuple[int, str]] = []
    heads: dict[int, str] = {}

    def flush(cursor) -> None:
        if entries:
            cursor.execute(
                f"UPDATE {ledger} e SET key_id = %s, entry_hash = u.hash "
                "FROM unnest(%s::bigint[], %s::text[]) AS u(id, hash) WHERE e.id = u.id",
                [key_id, [i for i, _ in entries], [h for _, h in entries]],
            )
            entries.clear()
        if heads:
            cursor.execute(
                f"UPDATE {wallets} w SET chain_head = u.head "
                "FROM unnest(%s::bigint[], %s::text[]) AS u(id, head) WHERE w.id = u.id",
                [list(heads), list(heads.values())],
            )
            heads.clear()

    with connection.cursor() as writer:
        writer.execute(f"ALTER TABLE {ledger} DISABLE TRIGGER billing_ledgerentry_append_only")
        with connection.chunked_cursor() as reader:
            reader.execute(f"SELECT {fields} FROM {ledger} ORDER BY wallet_id, id")
            wallet_id, prev = None, ""
            while rows := reader.fetchmany(_BATCH):
                for row in rows:
                    (entry_id, row_wallet, public_id, account_id, credit_type_id, kind, amount, balance_after,
                     related, api_key, user, created_at) = row
                    if row_wallet != wallet_id:
                        wallet_id, prev = row_wallet, ""
                    prev = chain.sign(
                        chain.entry_message(
                            key_id=key_id, public_id=public_id, wallet_id=row_wallet, account_id=account_id,
                            credit_type_id=credit_type_id, kind=kind, amount=amount, balance_after=balance_after,
                            related_entry_id=related, actor_api_key_id=api_key, actor_user_id=user,
                            created_at=created_at, prev_hash=prev,
                        ),
                        key_id,
                    )
                    entries.append((entry_id, prev))
                    heads[row_wallet] = prev
                flush(writer)
        writer.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses to run with trigger events pending
        writer.execute(f"ALTER TABLE {ledger} ENABLE TRIGGER billing_ledgerentry_append_only")
        writer.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0014_ledgerentry_approver_user'),
    ]

    operations = [
        migrations.AddField(
            model_name='ledgerentry',
            name='entry_hash',
            field=models.CharField(blank=True, default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='ledgerentry',
            name='key_id',
            field=models.CharField(blank=True, default='', editable=False, max_length=16),
        ),
        migrations.AddField(
            model_name='wallet',
            name='chain_head',
            field=models.CharField(blank=True, default='', editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='created_at',
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.AlterField(
            model_name='reconciliationdiscrepancy',
            name='kind',
            field=models.CharField(choices=[('balance_mismatch', 'Balance differs from the ledger sum'), ('held_mismatch', 'Held differs from the pending holds'), ('negative_balance', 'Negative balance or held'), ('over_refunded', 'Charge refunded beyond its amount'), ('stale_hold', 'Pending hold past its expiry'), ('lot_mismatch', 'Lot balance differs from the grant lots'), ('stale_lot', 'Grant lot past its expiry with credits left'), ('chain_broken', 'Entry hash or link does not verify'), ('chain_head_mismatch', "Wallet's chain head is not its newest entry's hash"), ('balance_after_mismatch', "Entry's balance_after is not the previous plus its amount"), ('checkpoint_regressed', 'Chain moved backwards against a checkpoint'), ('refund_log_mismatch', 'Refund log disagrees with its refund entry'), ('allowance_mismatch', 'Allowance grant disagrees with its ledger entry')], max_length=32),
        ),
        migrations.RunPython(chain_existing_entries, migrations.RunPython.noop, elidable=False),
        migrations.CreateModel(
            name='LedgerCheckpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('key_id', models.CharField(max_length=16)),
                ('wallets', models.PositiveBigIntegerField(default=0)),
                ('entries', models.PositiveBigIntegerField(default=0)),
                ('digest', models.CharField(max_length=64)),
                ('signature', models.CharField(max_length=64)),
                ('run', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='checkpoint', to='billing.reconciliationrun')),
            ],
            options={
                'ordering': ['-id'],
            },
        ),
        migrations.CreateModel(
            name='LedgerCheckpointHead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('wallet_id', models.BigIntegerField()),
                ('entry_count', models.PositiveBigIntegerField()),
                ('head', models.CharField(max_length=64)),
                ('checkpoint', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='heads', to='billing.ledgercheckpoint')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('checkpoint', 'wallet_id'), name='checkpointhead_one_per_wallet')],
            },
        ),
    ]
