"""`manage.py rollup_ledger`: refresh the dashboard's per-day totals now (the task does it every minute)."""

from django.core.management.base import BaseCommand

from console.services import ledger_rollup_refresh


class Command(BaseCommand):
    help = "Recompute the dashboard's per-day ledger totals for the open days (idempotent)."

    def handle(self, *args, **options):
        refreshed = ledger_rollup_refresh()
        self.stdout.write(
            f"Rolled up from {refreshed.first_day} to {refreshed.rolled_until:%Y-%m-%d %H:%M:%S}: "
            f"{refreshed.ledger_days} day totals, {refreshed.wallet_days} wallet days"
        )
