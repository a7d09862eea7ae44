"""The ledger's hash chain: every entry signed, each signature over the one before it in its wallet.

Why: the append-only trigger stops casual edits, but whoever holds the
database (a superuser, a stolen backup restored and edited) can disable it,
rewrite an entry and move the wallet's balance to match, and every sum
would still agree. So each entry carries `entry_hash`, an HMAC-SHA256 with a
key that is *not* in the database (`CREDITLEDGER_LEDGER_KEY`, see
config/ledger_keys.py) over its canonical fields and the previous entry's
hash in the same wallet; the wallet row keeps the newest hash
(`Wallet.chain_head`), written by the same statement as the balance.
Editing, inserting or deleting any entry without the key breaks the chain at
that entry (`manage.py reconcile` names it); deleting the newest entries and
rolling the wallet back consistently leaves a valid but shorter chain, which
the signed checkpoints catch (billing/checkpoints.py).

The canonical message is the `|`-joined text of the fields below, NULL as
the empty string, amounts with exactly nine decimals (their NUMERIC(28, 9)
text in PostgreSQL) and the time as integer microseconds since the epoch,
so the database can recompute it (statements.ledger_chain_problems) with
the built-in sha256() and no extension. Descriptive fields (description,
metadata, task id, route, pricing details) are not covered: the chain
proves who moved how much, when, where and why in money terms; the rest is
annotation.

The hash costs a few microseconds of CPU under the wallet lock and no
round trip (docs/performance.md, "The hash chain").
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NINE_PLACES = Decimal("1e-9")
_BLOCK = 64  # SHA-256's block size: HMAC's pads are this long

_signers: dict[bytes, Any] = {}


def current_key_id() -> str:
    return settings.CREDITLEDGER_LEDGER_KEY_ID


def _key(key_id: str) -> bytes:
    return settings.CREDITLEDGER_LEDGER_KEYS[key_id]


def money_text(value: Decimal) -> str:
    """A NUMERIC(28, 9) value as PostgreSQL prints it: exactly nine decimals."""
    return format(Decimal(value).quantize(_NINE_PLACES), "f")


def time_text(value: datetime) -> str:
    """Integer microseconds since the epoch (PostgreSQL: extract(epoch ...) * 1000000)."""
    return str((value - _EPOCH) // _MICROSECOND)


def entry_message(
    *,
    key_id: str,
    public_id: str,
    wallet_id: int,
    account_id: int,
    credit_type_id: int,
    kind: str,
    amount: Decimal,
    balance_after: Decimal,
    related_entry_id: int | None,
    actor_api_key_id: int | None,
    actor_user_id: int | None,
    created_at: datetime,
    prev_hash: str,
) -> bytes:
    """The canonical bytes an entry's hash covers (the same text as statements.LEDGER_MESSAGE_SQL)."""
    parts = (
        key_id,
        public_id,
        wallet_id,
        account_id,
        credit_type_id,
        kind,
        money_text(amount),
        money_text(balance_after),
        related_entry_id,
        actor_api_key_id,
        actor_user_id,
        time_text(created_at),
        prev_hash,
    )
    return "|".join("" if part is None else str(part) for part in parts).encode()


def sign(message: bytes, key_id: str) -> str:
    """HMAC-SHA256 of `message` under key `key_id`, as 64 hex digits."""
    key = _key(key_id)
    signer = _signers.get(key)
    if signer is None:
        signer = _signers[key] = hmac.new(key, digestmod=hashlib.sha256)
    mac = signer.copy()
    mac.update(message)
    return mac.hexdigest()


def entry_hash(entry: Any, *, prev_hash: str, key_id: str) -> str:
    """The hash of a LedgerEntry (saved or about to be) whose predecessor in its wallet has `prev_hash`."""
    return sign(
        entry_message(
            key_id=key_id,
            public_id=entry.public_id,
            wallet_id=entry.wallet_id,
            account_id=entry.account_id,
            credit_type_id=entry.credit_type_id,
            kind=entry.kind,
            amount=entry.amount,
            balance_after=entry.balance_after,
            related_entry_id=entry.related_entry_id,
            actor_api_key_id=entry.actor_api_key_id,
            actor_user_id=entry.actor_user_id,
            created_at=entry.created_at,
            prev_hash=prev_hash,
        ),
        key_id,
    )


def entry_sign(entry: Any, *, prev_hash: str) -> str:
    """Sign a new entry with the current key: sets its `key_id` and `entry_hash`; the hash (the wallet's new head)."""
    entry.key_id = current_key_id()
    entry.entry_hash = entry_hash(entry, prev_hash=prev_hash, key_id=entry.key_id)
    return entry.entry_hash


def key_pads(key_id: str) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104), for PostgreSQL to recompute HMAC with sha256() alone.

    HMAC(K, m) = H((K' xor opad) || H((K' xor ipad) || m)), K' the key
    (hashed first if longer than a block) padded with zeros to a block.
    These pads are as secret as the key: they go to the server as
    parameters of the verifying statement only, never into a table.
    """
    key = _key(key_id)
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def verifying_keys() -> tuple[list[str], list[bytes], list[bytes]]:
    """Every configured key as three parallel lists: ids, inner pads, outer pads."""
    ids = list(settings.CREDITLEDGER_LEDGER_KEYS)
    pads = [key_pads(key_id) for key_id in ids]
    return ids, [inner for inner, _ in pads], [outer for _, outer in pads]
