"""Public identifiers: a short type prefix and a random, URL-safe body (`acc_3kTq…`)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def public_id(prefix: str, length: int = 20) -> str:
    return f"{prefix}_{random_token(length)}"


def account_id() -> str:
    return public_id("acc")


def api_key_id() -> str:
    return public_id("key")
