"""Public identifiers: a short type prefix and a random, URL-safe body (`acc_3kTq…`)."""

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


# The largest multiple of the alphabet's size that fits in a byte: bytes at or
# above it are dropped so every character stays equally likely.
_UNBIASED_BELOW = 256 - 256 % len(_ALPHABET)


def random_token(length: int) -> str:
    # One call to the OS's CSPRNG per token (not one per character, which cost
    # ~0.1 ms on every ledger entry), with rejection sampling against modulo bias.
    chars: list[str] = []
    while len(chars) < length:
        chars.extend(_ALPHABET[b % len(_ALPHABET)] for b in secrets.token_bytes(length + 8) if b < _UNBIASED_BELOW)
    return "".join(chars[:length])


def public_id(prefix: str, length: int = 20) -> str:
    return f"{prefix}_{random_token(length)}"


def account_id() -> str:
    return public_id("acc")


def api_key_id() -> str:
    return public_id("key")


def derived_public_id(prefix: str, seed: str, length: int = 24) -> str:
    """A public id computed from `seed` (the same seed, the same id): for an object a retry must name again."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return f"{prefix}_{''.join(chars)}"
