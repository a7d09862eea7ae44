"""Signed checkpoints of the hash chain: the defence against a consistent rollback.

Deleting a wallet's newest entries and setting its balance and chain head
back to the last survivor leaves a chain that verifies. What it cannot do is
match a record, made earlier, of how long each chain was and what its head
was. A checkpoint is that record: every wallet's entry count and newest hash,
a SHA-256 digest over them, and an HMAC of the digest with the ledger key
(so a checkpoint cannot be forged or edited without the key either).

* Each full reconciliation run stores one (`LedgerCheckpoint`), and compares
  the ledger with the newest checkpoint of an earlier clean run.
* `manage.py ledger_checkpoint` prints one as JSON, to keep outside the
  database (an attacker with the database can delete the stored ones);
  `manage.py reconcile --checkpoint FILE` compares the ledger with it.

A wallet whose chain is now shorter than a checkpoint counted, or whose
entry at the checkpoint's position has another hash, is drift
(`checkpoint_regressed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import chain, statements
from billing.models import LedgerCheckpoint, LedgerCheckpointHead, ReconciliationRun

FORMAT = "creditledger-checkpoint/1"


class CheckpointInvalid(Exception):
    """A checkpoint whose digest or signature does not verify, or that cannot be read."""


def _digest(heads: Iterable[tuple[int, int, str]]) -> tuple[str, int, int]:
    """(SHA-256 hex of the heads' lines in the order given, wallets, entries)."""
    digest = hashlib.sha256()
    wallets = entries = 0
    for wallet_id, count, head in heads:
        digest.update(f"{wallet_id}:{count}:{head}\n".encode())
        wallets += 1
        entries += count
    return digest.hexdigest(), wallets, entries


def _signature(*, key_id: str, created_at: datetime, wallets: int, entries: int, digest: str) -> str:
    message = f"checkpoint|{key_id}|{chain.time_text(created_at)}|{wallets}|{entries}|{digest}"
    return chain.sign(message.encode(), key_id)


def _verify(*, key_id: str, created_at: datetime, wallets: int, entries: int, digest: str, signature: str) -> None:
    if key_id not in settings.CREDITLEDGER_LEDGER_KEYS:
        raise CheckpointInvalid(f"The checkpoint is signed with key {key_id!r}, which is not configured.")
    expected = _signature(key_id=key_id, created_at=created_at, wallets=wallets, entries=entries, digest=digest)
    if expected != signature:
        raise CheckpointInvalid("The checkpoint's signature does not verify.")


def checkpoint_record(*, run: ReconciliationRun) -> LedgerCheckpoint:
    """Store the heads of the chain pass just made (statements.reconcile_chain_build) as a signed checkpoint."""
    digest, wallets, entries = _digest(statements.reconcile_chain_heads())
    key_id = chain.current_key_id()
    created_at = timezone.now()
    checkpoint = LedgerCheckpoint.objects.create(
        run=run,
        created_at=created_at,
        key_id=key_id,
        wallets=wallets,
        entries=entries,
        digest=digest,
        signature=_signature(key_id=key_id, created_at=created_at, wallets=wallets, entries=entries, digest=digest),
    )
    statements.checkpoint_heads_store(checkpoint_id=checkpoint.pk)
    return checkpoint


def checkpoint_stored_latest() -> LedgerCheckpoint | None:
    """The newest stored checkpoint of a clean full run: the one the next run compares with."""
    return (
        LedgerCheckpoint.objects.filter(run__status=ReconciliationRun.Status.CLEAN, run__account__isnull=True)
        .order_by("-id")
        .first()
    )


def checkpoint_stored_heads(checkpoint: LedgerCheckpoint) -> Iterator[tuple[int, int, str]]:
    """A stored checkpoint's heads, by wallet id, after verifying its digest and signature (CheckpointInvalid)."""
    _verify(
        key_id=checkpoint.key_id,
        created_at=checkpoint.created_at,
        wallets=checkpoint.wallets,
        entries=checkpoint.entries,
        digest=checkpoint.digest,
        signature=checkpoint.signature,
    )
    heads = LedgerCheckpointHead.objects.filter(checkpoint=checkpoint).order_by("wallet_id")
    rows = heads.values_list("wallet_id", "entry_count", "head")
    digest, wallets, entries = _digest(rows.iterator(chunk_size=2000))
    if (digest, wallets, entries) != (checkpoint.digest, checkpoint.wallets, checkpoint.entries):
        raise CheckpointInvalid(f"Stored checkpoint {checkpoint.pk}'s heads do not match its digest.")
    return rows.iterator(chunk_size=2000)


def checkpoint_export() -> dict[str, Any]:
    """The ledger's current heads as a signed checkpoint document (`manage.py ledger_checkpoint`)."""
    with transaction.atomic():
        heads = [list(row) for row in statements.wallet_chain_heads()]
    digest, wallets, entries = _digest(heads)
    key_id = chain.current_key_id()
    created_at = timezone.now()
    return {
        "format": FORMAT,
        "created_at": created_at.isoformat(),
        "key_id": key_id,
        "wallets": wallets,
        "entries": entries,
        "digest": digest,
        "signature": _signature(key_id=key_id, created_at=created_at, wallets=wallets, entries=entries, digest=digest),
        "heads": heads,
    }


def checkpoint_parse(text: str) -> list[tuple[int, int, str]]:
    """The heads of a checkpoint document, after verifying it (CheckpointInvalid)."""
    try:
        document = json.loads(text)
        if document.get("format") != FORMAT:
            raise CheckpointInvalid(f"Not a {FORMAT} document.")
        heads = [(int(w), int(n), str(h)) for w, n, h in document["heads"]]
        created_at = datetime.fromisoformat(document["created_at"])
        claimed = (str(document["digest"]), int(document["wallets"]), int(document["entries"]))
        key_id, signature = str(document["key_id"]), str(document["signature"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointInvalid(f"Unreadable checkpoint: {exc}") from exc
    if _digest(heads) != claimed:
        raise CheckpointInvalid("The checkpoint's heads do not match its digest.")
    digest, wallets, entries = claimed
    _verify(key_id=key_id, created_at=created_at, wallets=wallets, entries=entries, digest=digest, signature=signature)
    return heads
