"""Renew ended subscription periods (the `renew_allowances` Celery task does the same on a schedule)."""

from django.core.management.base import BaseCommand

from subscriptions.services import subscriptions_renew_due


class Command(BaseCommand):
    help = "Advance every subscription whose period has ended and grant the new period's allowance once."

    def handle(self, *args, **options):
        granted = subscriptions_renew_due()
        self.stdout.write(f"{granted} allowance{'' if granted == 1 else 's'} granted.")
