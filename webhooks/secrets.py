"""Webhook secrets: generated in the Standard Webhooks format, stored encrypted, decrypted only to sign.

A secret must be usable for signing (HMAC), so it cannot be hashed: it is
stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256), under a key derived
from CREDITLEDGER_WEBHOOK_SECRET_KEY (or SECRET_KEY when that is unset). A
database dump alone does not reveal secrets; the key lives in the
environment, not the database. Changing the key makes stored secrets
unreadable: rotate every endpoint's secret after changing it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet
from django.conf import settings

SECRET_PREFIX = "whsec_"


def _fernet() -> Fernet:
    material = settings.CREDITLEDGER_WEBHOOK_SECRET_KEY or settings.SECRET_KEY
    key = hashlib.sha256(b"creditledger-webhook-secret:" + material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def secret_generate() -> str:
    """A new secret: `whsec_` and 32 random bytes in base64 (what standardwebhooks expects)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode("ascii")


def secret_decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()
