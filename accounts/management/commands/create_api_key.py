"""Create an API key and print its secret as the last line (for scripts)."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account, ApiKey
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key. The secret is printed once, as the last line of output."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--service", action="store_true", help="A service key: acts on any account.")
        group.add_argument(
            "--account", metavar="ID", help="An account key bound to this account (acc_… or external id)."
        )
        parser.add_argument("--name", default="", help="A label for the key.")

    def handle(self, *args, **options):
        account = None
        if options["account"]:
            ident = options["account"]
            account = (
                Account.objects.filter(public_id=ident).first() or Account.objects.filter(external_id=ident).first()
            )
            if account is None:
                raise CommandError(f"No account {ident!r}.")
        kind = ApiKey.Kind.SERVICE if options["service"] else ApiKey.Kind.ACCOUNT
        issued = api_key_create(kind=kind, account=account, name=options["name"])
        target = f" for {account.public_id}" if account else ""
        self.stderr.write(f"Created {kind} key {issued.api_key.prefix}{target}. The secret is shown once:")
        self.stdout.write(issued.secret)
