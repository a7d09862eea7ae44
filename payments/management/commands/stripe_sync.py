"""Find and process the Stripe events and subscription states that webhooks missed (idempotent)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from payments.services.sync import stripe_sync


class Command(BaseCommand):
    help = "List recent Stripe events and subscriptions and process any not yet stored (safe to run any time)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            help="ISO date-time, or a number of hours back (default 72; Stripe keeps events for 30 days).",
            default="72",
        )

    def handle(self, *args, since: str, **options):
        if since.isdigit():
            start = timezone.now() - timedelta(hours=int(since))
        else:
            start = parse_datetime(since)
            if start is None or timezone.is_naive(start):
                raise CommandError("--since must be a number of hours or an ISO date-time with a time zone.")
        report = stripe_sync(since=start)
        self.stdout.write(
            f"events: {report.events_seen} seen, {report.events_stored} new, {report.events_processed} processed; "
            f"subscriptions: {report.subscriptions_seen} seen, {report.subscriptions_applied} applied"
        )
