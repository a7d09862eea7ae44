"""Public identifiers: a short type prefix and a random, URL-safe body (`acc_3kTq…`)."""

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


# The largest multiple of the alphabet's size that fits in a byte: bytes at or
# above it are dropped so every character stays equally likely.
_UNBIASED_BELOW = 256 - 256 % len(_ALPHABET)
# Byte b (below _UNBIASED_BELOW) becomes the character _ALPHABET[b % 62]; the
# rest are deleted: `bytes.translate` does the mapping and the rejection in C.
_TO_ALPHABET = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(256))
_BIASED = bytes(range(_UNBIASED_BELOW, 256))


def random_token(length: int) -> str:
    # One call to the OS's CSPRNG per token (not one per character, which cost
    # ~0.1 ms on every ledger entry), with rejection sampling against modulo bias.
    token = b""
    while len(token) < length:
        token += secrets.token_bytes(length + 8).translate(_TO_ALPHABET, _BIASED)
    return token[:length].decode("ascii")


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
