"""`manage.py ledger_checkpoint`: print a signed checkpoint of every wallet's chain head, to keep outside the database.

The JSON document lists each wallet's entry count and newest hash, their
SHA-256 digest and an HMAC of it with the current ledger key. Store it
somewhere the database's users cannot write (object storage with retention,
a ticket, a printout); `manage.py reconcile --checkpoint FILE` later proves
that no wallet's chain moved backwards since (docs/operations.md, "Checkpoints").
"""

import json

from django.core.management.base import BaseCommand

from billing.checkpoints import checkpoint_export


class Command(BaseCommand):
    help = "Print a signed checkpoint (JSON) of every wallet's chain head and entry count."

    def handle(self, *args, **options) -> None:
        document = checkpoint_export()
        self.stdout.write(json.dumps(document, separators=(",", ":")))
        self.stderr.write(
            f"checkpoint: {document['wallets']} wallets, {document['entries']} entries, digest {document['digest']}"
        )
