"""The charge path without the ledger's hash chain: the baseline `python -m bench --unsigned` measures against.

Bench only. The hash chain (billing/chain.py) adds an HMAC under the wallet
lock; to measure what that costs, the benchmark's gunicorn workers
(`bench.unsigned:application`) and client processes replace
`chain.entry_sign` with a function that signs nothing. The statements are
unchanged (the entry's key id and hash, the wallet's head still travel as
parameters, empty), so the difference is the hashing alone
(docs/performance.md, "The hash chain").
"""

from __future__ import annotations

import os

ENV = "BENCH_UNSIGNED"


def patch() -> None:
    """Make every posting in this process skip the HMAC (only when BENCH_UNSIGNED=1)."""
    if os.environ.get(ENV) != "1":
        return
    from billing import chain

    def unsigned(entry, *, prev_hash: str) -> str:
        entry.key_id = ""
        entry.entry_hash = ""
        return ""

    chain.entry_sign = unsigned


def __getattr__(name: str):
    if name == "application":  # gunicorn bench.unsigned:application
        from config.wsgi import application

        patch()
        return application
    raise AttributeError(name)
