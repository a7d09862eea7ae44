"""`manage.py reconcile [--account ID]`: prove balances against the ledger.

Exits 0 when clean and 2 on drift (after storing the run and alerting), so
cron, CI or an operator's shell can act on it. It never changes a balance.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from billing.outbox import outbox_message_dispatch
from billing.reconciliation import reconciliation_run

DRIFT_EXIT_CODE = 2


class Command(BaseCommand):
    help = "Check every wallet against its ledger and holds; store the run; exit non-zero on drift."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--account", help="Only this account (its public id, e.g. acc_…).")

    def handle(self, *args, account=None, **options) -> None:
        scope = None
        if account:
            scope = Account.objects.filter(public_id=account).first()
            if scope is None:
                raise CommandError(f"No account {account!r}.")
        run = reconciliation_run(account=scope, trigger="command")
        if run.alert_message is not None:
            # Deliver the alert now rather than wait for a worker; if this
            # fails the message stays pending for the outbox sweep.
            outbox_message_dispatch(message_id=run.alert_message.pk)
        self.stdout.write(
            f"reconciliation run {run.pk}: {run.status}, {run.wallets_checked} wallets, "
            f"{run.discrepancy_count} discrepancies"
        )
        if run.status != run.Status.CLEAN:
            for discrepancy in run.discrepancies.all()[:20]:
                self.stdout.write(f"  {discrepancy.kind} wallet={discrepancy.wallet_id} {discrepancy.detail}")
            raise CommandError(
                f"Reconciliation found {run.discrepancy_count} discrepancies (run {run.pk}).",
                returncode=DRIFT_EXIT_CODE,
            )
