"""Demo data for `make run`. Safe to run again: it creates only what is missing.

Besides the catalogue, the staff login, the three tour accounts and the
service key, it plays some activity on two more accounts so that every
admin page has rows: charges (one priced from the catalogue, one a paid key
that came to zero, which files a pricing anomaly), holds in each state,
refunds with several reasons and routes, a subscription on a plan, a price
with two versions, a US-dollar wallet (scale 6) and a reconciliation run.
Five more accounts get 30 days of history (`_history`: played day by day
with the clock set back by time-machine, so entries carry their day), so the
dashboard at the admin index has a trend, top spenders and one account
running low; the dashboard's rollup is then refreshed.
`demo-alice` is left as the tour in the README expects it (500.00 credits).
Everything goes through the services, like any other caller.
"""

import os
import random
import secrets
from datetime import datetime, time, timedelta
from decimal import Decimal

import time_machine
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, ApiKey
from accounts.services import account_create, api_key_create
from approvals.models import ApprovalRequest
from approvals.services import approval_approve, approval_reject, approval_request_create
from billing.models import Hold, LedgerEntry, ReconciliationRun
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
from console.services import ledger_rollup_refresh
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
HISTORY_DAYS = 29  # before today: the dashboard's window is 30 days
# (external id, name, funding, charges a day, typical charge): judy runs low.
HISTORY_ACCOUNTS = [
    ("demo-frank", "Frank Studio", "720.00", 4, "18.00"),
    ("demo-grace", "Grace Analytics", "360.00", 3, "12.00"),
    ("demo-heidi", "Heidi Labs", "180.00", 2, "9.00"),
    ("demo-ivan", "Ivan Transcribes", "80.00", 2, "4.00"),
    ("demo-judy", "Judy Nightly", "100.00", 1, "3.00"),
]
HISTORY_ROUTES = ["/api/generate", "/api/chat", "/api/transcribe", "/api/export"]

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
            self._history(credits)
            self._activity(credits)

        if not ApiKey.objects.filter(name="demo service key").exists():
            issued = api_key_create(kind=ApiKey.Kind.SERVICE, name="demo service key")
            self.stdout.write("Demo service API key (shown once, keep it):")
            self.stdout.write(f"  {issued.secret}")
        else:
            self.stdout.write("Demo service API key exists (its secret was shown when it was created).")
            self.stdout.write("  Lost it? Make another with: .venv/bin/python manage.py create_api_key --service")

        if not ApprovalRequest.objects.exists():
            self._approvals(credits, approver=user_model.objects.get(username=username))

        if not ReconciliationRun.objects.exists():
            run = reconciliation_run(trigger="demo")
            self.stdout.write(f"Reconciliation run {run.pk}: {run.status}")
        # The dashboard's per-day totals (the Celery beat task does this every minute).
        ledger_rollup_refresh()

    def _history(self, credits: CreditType) -> None:
        """30 days of charges, grants and refunds on five accounts, each day played at its own date.

        Deterministic (a seeded generator). The clock is set back with
        time-machine so every entry carries the day it was played on; the
        services run exactly as they do for any caller.
        """
        rng = random.Random(11)
        system = Actor.system()
        today = timezone.localdate()
        accounts = []
        for n in range(HISTORY_DAYS, 0, -1):
            day = today - timedelta(days=n)
            moment = timezone.make_aware(datetime.combine(day, time(9)))
            with time_machine.travel(moment, tick=False):
                if not accounts:
                    for external_id, name, funding, _, _ in HISTORY_ACCOUNTS:
                        account = account_create(external_id=external_id, name=name, email=f"{external_id}@example.com")
                        grant_create(
                            account=account, credit_type=credits, amount=funding, reason="demo funding", actor=system
                        )
                        accounts.append(account)
                for account, (_, _, _, per_day, typical) in zip(accounts, HISTORY_ACCOUNTS, strict=True):
                    if n % 7 == 0 and per_day > 1:  # a weekly top-up of about eight days' spend
                        top_up = per_day * Decimal(typical) * 8
                        grant_create(account=account, credit_type=credits, amount=top_up, reason="top-up", actor=system)
                    for _ in range(rng.randint(per_day - 1, per_day + 1) if per_day > 1 else 1):
                        amount = (Decimal(typical) * Decimal(rng.uniform(0.5, 1.5))).quantize(Decimal("0.01"))
                        route = rng.choice(HISTORY_ROUTES)
                        charge = charge_create(
                            account=account, credit_type=credits, amount=amount, actor=system, route=route
                        )
                        # Transcription fails more often than the rest: its refund rate stands out.
                        if rng.random() < (0.25 if route == "/api/transcribe" else 0.05):
                            refund_issue(
                                charge=charge,
                                reason=rng.choice(["timeout", "backend_failure", "api_error"]),
                                api_route=route,
                                error_message="demo",
                                actor=system,
                            )
        self.stdout.write(f"30 days of demo history on {len(accounts)} accounts (demo-frank … demo-judy)")

    def _approvals(self, credits: CreditType, *, approver) -> None:
        """Four-eyes requests by a second staff user: one pending of each kind, one approved, one rejected."""
        from django.contrib.auth.models import Permission

        requester, created = get_user_model().objects.get_or_create(
            username="demo-requester", defaults={"email": "requester@example.com", "is_staff": True}
        )
        if created:
            requester.set_unusable_password()
            requester.save(update_fields=["password"])
            requester.user_permissions.add(
                *Permission.objects.filter(codename__in=["grant_credits", "adjust_balance", "refund_charge"])
            )
        accounts = {
            a.external_id: a
            for a in Account.objects.filter(external_id__in=["demo-bob", "demo-dave", ACTIVITY_ACCOUNT])
        }
        if len(accounts) < 3:
            return

        def ask(kind: str, external_id: str, amount: str, **fields) -> ApprovalRequest:
            return approval_request_create(
                kind=kind,
                account=accounts[external_id],
                credit_type=credits,
                amount=amount,
                requested_by=requester,
                **fields,
            )

        ask("grant", "demo-bob", "5000.00", reason="demo: enterprise trial credits")
        ask("adjustment", ACTIVITY_ACCOUNT, "-150.00", reason="demo: duplicate top-up reversed")
        export = LedgerEntry.objects.filter(account=accounts[ACTIVITY_ACCOUNT], route="/api/export").first()
        if export is not None:
            ask("refund", ACTIVITY_ACCOUNT, "1234.50", charge=export, refund_reason="customer_service", note="demo")
        approval_approve(
            approval=ask("grant", "demo-dave", "2000.00", reason="demo: annual prepayment"),
            approver=approver,
            note="demo: invoice paid",
        )
        approval_reject(
            approval=ask("grant", "demo-bob", "25000.00", reason="demo: goodwill"),
            approver=approver,
            note="demo: far above policy",
        )
        self.stdout.write("Approval requests by demo-requester: 3 pending, 1 approved, 1 rejected")

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
