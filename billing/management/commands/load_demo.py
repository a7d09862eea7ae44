"""Demo data for `make run`. Safe to run again: it creates only what is missing."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Account, ApiKey
from accounts.services import account_create, api_key_create
from billing.services import Actor, grant_create
from pricing.models import CreditType, Price
from pricing.services import alias_set, price_create

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
        for external_id, name, email, funding in ACCOUNTS:
            if Account.objects.filter(external_id=external_id).exists():
                continue
            account = account_create(external_id=external_id, name=name, email=email)
            grant_create(
                account=account, credit_type=credits, amount=funding, reason="demo funding", actor=Actor.system()
            )
            self.stdout.write(f"Account {account.public_id} ({external_id}) funded with {funding} credits")

        if not ApiKey.objects.filter(name="demo service key").exists():
            issued = api_key_create(kind=ApiKey.Kind.SERVICE, name="demo service key")
            self.stdout.write("Demo service API key (shown once, keep it):")
            self.stdout.write(f"  {issued.secret}")
        else:
            self.stdout.write("Demo service API key exists (its secret was shown when it was created).")
