"""The ledger's signing keys: `CREDITLEDGER_LEDGER_KEY`, parsed and checked at start-up.

Format: `kid:secret[,kid:secret...]`. The first key signs new ledger entries
and checkpoints; every key listed verifies what it signed. Rotation is
prepending a new key and keeping the old ones (docs/operations.md, "Ledger
keys"). A key id is 1-16 letters, digits, `_` or `-` (it is stored on every
entry); a secret is at least 16 characters and never contains a comma.
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

_KID = re.compile(r"[A-Za-z0-9_-]{1,16}")
MIN_SECRET_CHARS = 16


def ledger_keys_parse(value: str) -> tuple[dict[str, bytes], str]:
    """({key id: secret bytes}, the current key id) from the setting's text; ImproperlyConfigured if malformed."""
    keys: dict[str, bytes] = {}
    current = ""
    for part in value.split(","):
        kid, sep, secret = part.strip().partition(":")
        if not sep or not _KID.fullmatch(kid):
            raise ImproperlyConfigured(
                "CREDITLEDGER_LEDGER_KEY must be 'kid:secret[,kid:secret...]' with key ids of 1-16 "
                "letters, digits, '_' or '-'."
            )
        if len(secret) < MIN_SECRET_CHARS:
            raise ImproperlyConfigured(f"CREDITLEDGER_LEDGER_KEY: the secret of key {kid!r} is shorter than 16.")
        if kid in keys:
            raise ImproperlyConfigured(f"CREDITLEDGER_LEDGER_KEY: key id {kid!r} appears twice.")
        keys[kid] = secret.encode()
        current = current or kid
    return keys, current
