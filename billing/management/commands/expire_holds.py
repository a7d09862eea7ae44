"""Expire every pending hold past its expiry, applying its `on_expiry` (cron or by hand).

The Celery beat task `billing.tasks.expire_holds` does the same; running both,
or several of either, is safe: each hold is resolved exactly once.
"""

from django.core.management.base import BaseCommand, CommandError

from billing.services import holds_expire_due


class Command(BaseCommand):
    help = "Release or capture (per on_expiry) every pending hold whose expiry has passed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="Holds read per query (default 500).")

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        expired = holds_expire_due(batch_size=batch_size)
        self.stdout.write(f"Expired {expired} hold(s).")
