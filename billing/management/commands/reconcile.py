"""`manage.py reconcile [--account ID] [--checkpoint FILE]`: prove balances and the hash chain against the ledger.

Exits 0 when clean and 2 on drift (after storing the run and alerting), so
cron, CI or an operator's shell can act on it. It never changes a balance.
`--checkpoint` compares the chains with a checkpoint printed earlier by
`manage.py ledger_checkpoint` (kept outside the database); one that does not
verify is refused (exit 1) before anything runs.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from billing.checkpoints import CheckpointInvalid, checkpoint_parse
from billing.outbox import outbox_message_dispatch
from billing.reconciliation import reconciliation_run

DRIFT_EXIT_CODE = 2
SHOWN = 20


class Command(BaseCommand):
    help = "Check every wallet against its ledger, holds and hash chain; store the run; exit non-zero on drift."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--account", help="Only this account (its public id, e.g. acc_…).")
        parser.add_argument(
            "--checkpoint", help="A checkpoint file from `manage.py ledger_checkpoint` to compare with ('-': stdin)."
        )

    def handle(self, *args, account=None, checkpoint=None, **options) -> None:
        scope = None
        if account:
            scope = Account.objects.filter(public_id=account).first()
            if scope is None:
                raise CommandError(f"No account {account!r}.")
        heads = None
        if checkpoint:
            try:
                text = self.stdin.read() if checkpoint == "-" else Path(checkpoint).read_text()
                heads = checkpoint_parse(text)
            except (OSError, CheckpointInvalid) as exc:
                raise CommandError(f"Checkpoint refused: {exc}") from exc
        run = reconciliation_run(account=scope, trigger="command", checkpoint=heads)
        if run.alert_message is not None:
            # Deliver the alert now rather than wait for a worker; if this
            # fails the message stays pending for the outbox sweep.
            outbox_message_dispatch(message_id=run.alert_message.pk)
        self.stdout.write(
            f"reconciliation run {run.pk}: {run.status}, {run.wallets_checked} wallets, "
            f"{run.discrepancy_count} discrepancies"
        )
        if run.status != run.Status.CLEAN:
            for discrepancy in run.discrepancies.select_related("ledger_entry")[:SHOWN]:
                entry = discrepancy.ledger_entry
                named = f" entry={entry.public_id}" if entry is not None else ""
                self.stdout.write(f"  {discrepancy.kind} wallet={discrepancy.wallet_id}{named} {discrepancy.detail}")
            raise CommandError(
                f"Reconciliation found {run.discrepancy_count} discrepancies (run {run.pk}).",
                returncode=DRIFT_EXIT_CODE,
            )
