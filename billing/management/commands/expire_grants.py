"""Expire grant lots past their expiry (the `expire_grants` Celery task does the same on a schedule)."""

from django.core.management.base import BaseCommand

from billing.services import grants_expire_due


class Command(BaseCommand):
    help = "Write an expiry ledger entry for the unused remainder of every grant past its expiry. Idempotent."

    def handle(self, *args, **options):
        written = grants_expire_due()
        self.stdout.write(f"{written} expiry entr{'y' if written == 1 else 'ies'} written.")
