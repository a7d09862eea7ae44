"""Demo data for `make run`. Safe to run again: it creates only what is missing.

Besides the catalogue, the staff login, the three tour accounts and the
service key, it plays some activity on two more accounts so that every
admin page has rows: charges (one priced from the catalogue, one a paid key
that came to zero, which files a pricing anomaly), holds in each state,
refunds with several reasons and routes, a subscription on a plan, a price
with two versions, a US-dollar wallet (scale 6) and a reconciliation run.
`demo-alice` is left as the tour in the README expects it (500.00 credits).
Everything goes through the services, like any other caller.
"""

import os
import secrets
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, ApiKey
from accounts.services import account_create, api_key_create
from billing.models import Hold, ReconciliationRun
from billing.reconciliation import reconciliation_run
from billing.services import (
    Actor,
    charge_create,
    grant_create,
    hold_capture,
    hold_create,
    hold_expire,
    hold_release,
)
from payments.models import CreditPack
from pricing.models import CreditType, Price
from pricing.services import alias_set, price_create, price_quote, usage_parse
from refunds.services import refund_issue
from subscriptions.models import Plan
from subscriptions.services import subscription_create

CREDIT_TYPES = [("credits", "Credits", 2), ("usd", "US dollars", 6), ("reading", "Readings", 0)]
# Credits per request / per 1K input / per 1K output tokens / per unit.
PRICES = [
    {"key": "openai/gpt-4o", "per_1k_input_tokens": "0.25", "per_1k_output_tokens": "1.00"},
    {"key": "anthropic/claude-3-opus", "per_1k_input_tokens": "1.50", "per_1k_output_tokens": "7.50"},
    {"key": "meta-llama/llama-3-8b-instruct:free", "is_free": True},
    {"key": "image.generate", "per_unit": "4", "unit_name": "image"},
    {"key": "export.premium", "per_request": "10"},
]
ALIASES = [("gpt-4o", "openai/gpt-4o")]

# Its existence says the demo activity has been played (load_demo plays it once).
ACTIVITY_ACCOUNT = "demo-erin"

ACCOUNTS = [
    ("demo-alice", "Alice Example", "alice@example.com", "500.00"),
    ("demo-bob", "Bob Example", "bob@example.com", "25.00"),
    ("demo-carol", "Carol Example", "carol@example.com", "0.50"),
]


class Command(BaseCommand):
    help = "Load demo credit types, a staff superuser, funded accounts and a service API key (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        for code, name, scale in CREDIT_TYPES:
            CreditType.objects.get_or_create(code=code, defaults={"name": name, "scale": scale})

        user_model = get_user_model()
        username = os.environ.get("DEMO_ADMIN_USERNAME", "admin")
        if not user_model.objects.filter(username=username).exists():
            password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=username, email="admin@example.com", password=password)
            shown = "from DEMO_ADMIN_PASSWORD" if os.environ.get("DEMO_ADMIN_PASSWORD") else password
            self.stdout.write(f"Staff superuser: {username} / {shown}")
        else:
            self.stdout.write(f"Staff superuser {username!r} exists; its password was shown on the first run.")
        # The password is stored only as a hash: it cannot be shown again, only replaced.
        self.stdout.write(f"  Forgot it? Set a new one with: .venv/bin/python manage.py changepassword {username}")

        credits = CreditType.objects.get(code="credits")
        for price in PRICES:
            if not Price.objects.filter(key=price["key"], credit_type=credits).exists():
                price_create(credit_type=credits, note="demo", **price)
                self.stdout.write(f"Price {price['key']}")
        for alias, target in ALIASES:
            alias_set(alias=alias, target=target, note="demo")
        # Packs for the customer portal's "Buy credits" (payments; Checkout needs STRIPE_SECRET_KEY).
        for name, pack_credits, price_minor in (("Top-up 1,000", "1000.00", 1000), ("Top-up 5,000", "5000.00", 4500)):
            CreditPack.objects.get_or_create(
                name=name,
                defaults={"credit_type": credits, "credits": Decimal(pack_credits), "price_minor": price_minor},
            )
        for external_id, name, email, funding in ACCOUNTS:
            if Account.objects.filter(external_id=external_id).exists():
                continue
            account = account_create(external_id=external_id, name=name, email=email)
            grant_create(
                account=account, credit_type=credits, amount=funding, reason="demo funding", actor=Actor.system()
            )
            self.stdout.write(f"Account {account.public_id} ({external_id}) funded with {funding} credits")

        if not Account.objects.filter(external_id=ACTIVITY_ACCOUNT).exists():
            self._activity(credits)

        if not ApiKey.objects.filter(name="demo service key").exists():
            issued = api_key_create(kind=ApiKey.Kind.SERVICE, name="demo service key")
            self.stdout.write("Demo service API key (shown once, keep it):")
            self.stdout.write(f"  {issued.secret}")
        else:
            self.stdout.write("Demo service API key exists (its secret was shown when it was created).")
            self.stdout.write("  Lost it? Make another with: .venv/bin/python manage.py create_api_key --service")

        if not ReconciliationRun.objects.exists():
            run = reconciliation_run(trigger="demo")
            self.stdout.write(f"Reconciliation run {run.pk}: {run.status}")

    def _activity(self, credits: CreditType) -> None:
        """Charges, holds, refunds, a subscription, price history and an anomaly on two more accounts."""
        usd = CreditType.objects.get(code="usd")
        system = Actor.system()

        # A price with history: the opus price changed once.
        opus = Price.objects.filter(key="anthropic/claude-3-opus", credit_type=credits)
        if opus.count() == 1:
            price_create(
                key="anthropic/claude-3-opus",
                credit_type=credits,
                per_1k_input_tokens="1.25",
                per_1k_output_tokens="6.25",
                note="demo: provider price cut",
            )

        dave = account_create(external_id="demo-dave", name="Dave Subscriber", email="dave@example.com")
        plan, _ = Plan.objects.get_or_create(
            code="starter",
            defaults={
                "name": "Starter",
                "credit_type": credits,
                "monthly_allowance": Decimal("1000.00"),
                "daily_limit": Decimal("250.00"),
                "trial_allowance": Decimal("50.00"),
                "trial_daily_limit": Decimal("20.00"),
            },
        )
        subscription_create(account=dave, plan=plan, actor=system)
        for task in range(3):
            charge_create(
                account=dave,
                credit_type=credits,
                amount="12.50",
                actor=system,
                task_id=f"demo-job-{task}",
                route="/api/generate",
            )

        erin = account_create(external_id=ACTIVITY_ACCOUNT, name="Erin Heavyuser", email="erin@example.com")
        grant_create(account=erin, credit_type=credits, amount="2500.00", reason="demo funding", actor=system)
        grant_create(account=erin, credit_type=usd, amount="25", reason="demo funding (dollars)", actor=system)
        charges = [
            charge_create(
                account=erin, credit_type=credits, amount=amount, actor=system, task_id=f"demo-{n}", route=route
            )
            for n, (amount, route) in enumerate(
                [
                    ("4.00", "/api/generate"),
                    ("2.50", "/api/generate"),
                    ("1234.50", "/api/export"),
                    ("0.75", "/api/chat"),
                    ("7.25", "/api/chat"),
                    ("15.00", "/api/transcribe"),
                ]
            )
        ]
        usage = usage_parse({"input_tokens": 1200, "output_tokens": 350})
        charge_create(
            account=erin,
            credit_type=credits,
            actor=system,
            route="/api/chat",
            task_id="demo-priced",
            quote=price_quote(key="gpt-4o", usage=usage, credit_type=credits),
        )
        # A paid key that came to zero: settled at nothing, and filed as a pricing anomaly.
        charge_create(
            account=erin,
            credit_type=credits,
            actor=system,
            route="/api/chat",
            task_id="demo-zero",
            quote=price_quote(key="gpt-4o", usage=usage_parse({}), credit_type=credits),
        )
        charge_create(account=erin, credit_type=usd, amount="0.123456", actor=system, route="/api/chat")

        refunds = [
            (charges[0], None, "backend_failure", "/api/generate", "upstream 502"),
            (charges[1], "1.00", "timeout", "/api/generate", "no answer in 60 s"),
            (charges[3], None, "api_error", "/api/chat", "500 from the model"),
            (charges[4], "2.25", "customer_service", "", ""),
            (charges[5], "5.00", "parsing_error", "/api/transcribe", "could not parse the audio"),
        ]
        for charge, amount, reason, route, error in refunds:
            refund_issue(
                charge=charge,
                amount=amount,
                reason=reason,
                api_route=route,
                error_message=error,
                actor=system,
                note="demo",
            )

        # Holds in each state: pending, captured, released, expired.
        def hold(amount: str, task: str, **options) -> Hold:
            return hold_create(
                account=erin,
                credit_type=credits,
                amount=amount,
                actor=system,
                task_id=task,
                route="/api/stream",
                **options,
            )

        hold("10.00", "demo-stream-pending", expires_in=6 * 60 * 60)
        hold_capture(hold=hold("10.00", "demo-stream-captured"), amount="7.30", actor=system)
        hold_release(hold=hold("5.00", "demo-stream-released"), actor=system, reason="job cancelled")
        due = hold("3.00", "demo-stream-expired", expires_in=1, on_expiry=Hold.OnExpiry.CAPTURE)
        hold_expire(hold=due, now=timezone.now() + timedelta(minutes=1))
        self.stdout.write(
            f"Demo activity on {dave.public_id} (demo-dave, subscribed) and {erin.public_id} ({ACTIVITY_ACCOUNT})"
        )
